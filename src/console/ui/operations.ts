/** Admin operations: the dead-letter topics (list, replay) and the load generator. */
// The server's JSON shape, imported so the two cannot drift (a type import: nothing reaches the bundle).
import type { LoadStatus } from "../load-runner.ts";
import { api } from "./api.ts";
import type { Context } from "./context.ts";
import { field, formatNumber, formatTime, h, replace } from "./dom.ts";
import { actionForm, busy, errorBox } from "./widgets.ts";

interface DeadLetterTopic {
  topic: string;
  exists: boolean;
  records: number;
}

interface DeadLetter {
  partition: number;
  offset: number;
  reason: string;
  field: string;
  stage: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  failed_at: string | null;
  key: string | null;
  value_bytes: number;
}

export function deadLettersPage(_ctx: Context, root: HTMLElement): undefined {
  const topicsEl = h("div", { class: "card" }, "loading topics...");
  const lettersEl = h("div");
  const message = h("div", { "data-testid": "dead-letters-message" });
  const limit = h("input", { type: "number", min: 1, max: 1000, value: "100", class: "narrow" });

  const showLetters = async (topic: string) => {
    replace(lettersEl, h("div", { class: "card" }, `reading ${topic}...`));
    try {
      const result = await api<{ items: DeadLetter[]; more: boolean; limit: number }>(
        "GET",
        `/api/v1/console/dead-letters/${encodeURIComponent(topic)}?limit=${Number(limit.value) || 100}`,
      );
      replace(
        lettersEl,
        h(
          "div",
          { class: "card" },
          h("h2", null, topic),
          result.more
            ? h(
                "div",
                { class: "alert warn" },
                `Showing the first ${result.limit} records from the start of the topic; there are more (raise the limit, up to 1000).`,
              )
            : null,
          h(
            "table",
            { "data-testid": "dead-letters-table" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["partition/offset", "failed", "stage", "reason", "field", "source", "key", "bytes"].map(
                  (t) => h("th", null, t),
                ),
              ),
            ),
            h(
              "tbody",
              null,
              result.items.length === 0
                ? h("tr", null, h("td", { colspan: 8, class: "muted" }, "Empty."))
                : result.items.map((l) =>
                    h(
                      "tr",
                      null,
                      h("td", null, `${l.partition}/${l.offset}`),
                      h("td", null, formatTime(l.failed_at)),
                      h("td", null, l.stage),
                      h("td", { class: "wrap" }, l.reason),
                      h("td", null, h("code", null, l.field)),
                      h(
                        "td",
                        null,
                        h("code", null, `${l.source_topic}[${l.source_partition}]@${l.source_offset}`),
                      ),
                      h("td", null, h("code", { class: "wrap" }, l.key ?? "")),
                      h("td", { class: "num" }, l.value_bytes),
                    ),
                  ),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(lettersEl, errorBox(error));
    }
  };

  const loadTopics = async () => {
    try {
      const result = await api<{ topics: DeadLetterTopic[] }>("GET", "/api/v1/console/dead-letters");
      replace(
        topicsEl,
        h(
          "table",
          { "data-testid": "dead-letter-topics" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              ["topic", "records", ""].map((t) => h("th", null, t)),
            ),
          ),
          h(
            "tbody",
            null,
            result.topics.map((t) =>
              h(
                "tr",
                null,
                h("td", null, h("code", null, t.topic)),
                h("td", { class: "num" }, t.exists ? t.records.toLocaleString() : "no such topic"),
                h(
                  "td",
                  { class: "actions" },
                  h(
                    "button",
                    {
                      class: "secondary small",
                      disabled: !t.exists,
                      onclick: () => void showLetters(t.topic),
                    },
                    "List",
                  ),
                  h(
                    "button",
                    {
                      class: "small",
                      disabled: !t.exists || t.records === 0,
                      onclick: (event: Event) => {
                        const button = event.currentTarget as HTMLButtonElement;
                        if (!window.confirm(`Replay the dead letters of ${t.topic} to their source topics?`))
                          return;
                        void busy(button, message, async () => {
                          const r = await api<{ replayed: number }>(
                            "POST",
                            `/api/v1/console/dead-letters/${encodeURIComponent(t.topic)}/replay`,
                          );
                          return `Replayed ${r.replayed} record(s) from ${t.topic} (records replayed before are skipped).`;
                        });
                      },
                    },
                    "Replay",
                  ),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(topicsEl, errorBox(error));
    }
  };
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Dead letters"),
      h("span", { class: "spacer" }),
      field("list limit", limit),
      h("button", { class: "secondary", onclick: () => void loadTopics() }, "Refresh"),
    ),
    h(
      "p",
      { class: "muted" },
      "Records a stage could not process, with the reason. Replay sends each one not replayed yet back to its source topic.",
    ),
    message,
    topicsEl,
    lettersEl,
  );
  void loadTopics();
  return undefined;
}

export function loadPage(_ctx: Context, root: HTMLElement): () => void {
  const rate = h("input", {
    type: "number",
    min: 0.1,
    step: "any",
    value: "20",
    "data-testid": "load-rate",
    class: "narrow",
  });
  const duration = h("input", {
    type: "number",
    min: 1,
    step: "any",
    value: "30",
    "data-testid": "load-duration",
    class: "narrow",
  });
  const severities = h("input", {
    value: "LOW:50,MEDIUM:30,HIGH:15,CRITICAL:5",
    "data-testid": "load-severities",
  });
  const sources = h("input", { value: "api:4,db:2,payments:2,checkout:2", "data-testid": "load-sources" });
  const names = h("input", {
    value: "cpu-high:3,latency-high:3,disk-full:2,error-rate:2",
    "data-testid": "load-names",
  });
  const context = h("input", { value: "env=console", "data-testid": "load-context" });
  const scope = h("input", {
    value: "",
    placeholder: "client:<id> or shared:<name>",
    "data-testid": "load-scope",
  });
  const out = h("div", { "data-testid": "load-message" });
  const progressEl = h("div", { class: "card", "data-testid": "load-progress" }, "idle");
  const start = h("button", { type: "submit", "data-testid": "load-start" }, "Start");
  const stop = h("button", { type: "button", class: "danger", "data-testid": "load-stop" }, "Stop");
  let timer: ReturnType<typeof setInterval> | undefined;

  const render = (status: LoadStatus) => {
    const p = status.progress;
    const pct = p && p.total > 0 ? Math.min(100, (p.acknowledged / p.total) * 100) : 0;
    start.disabled = status.running;
    stop.disabled = !status.running;
    replace(
      progressEl,
      h(
        "div",
        { class: "stack", "data-running": String(status.running) },
        h(
          "div",
          { class: "row" },
          h("strong", null, status.running ? "running" : status.summary ? "finished" : "idle"),
          status.run_id ? h("span", { class: "muted" }, ` run ${status.run_id} → ${status.topic}`) : null,
        ),
        h("div", { class: "progress" }, h("span", { style: `width:${pct.toFixed(1)}%` })),
        p
          ? h(
              "div",
              { class: "tiles" },
              [
                ["sent", p.sent],
                ["acknowledged", p.acknowledged],
                ["of", p.total],
                ["errors", p.errors],
                ["rate /s", p.rate_per_s],
                ["behind", p.backlog],
                ["elapsed s", p.elapsedMs / 1000],
              ].map(([label, value]) =>
                h(
                  "div",
                  { class: "tile" },
                  h("div", { class: "tile-name" }, String(label)),
                  h(
                    "div",
                    { class: "tile-value", "data-testid": `load-${String(label).replace(/\W+/g, "-")}` },
                    formatNumber(value as number),
                  ),
                ),
              ),
            )
          : null,
        status.summary
          ? h(
              "div",
              { class: "muted" },
              `last run: ${status.summary.acknowledged} acknowledged, ${status.summary.errors} errors in ${(status.summary.durationMs / 1000).toFixed(1)} s${status.summary.interrupted ? " (stopped)" : ""}`,
            )
          : null,
        status.error ? errorBox(new Error(status.error)) : null,
      ),
    );
  };
  const poll = async () => {
    try {
      const status = await api<LoadStatus>("GET", "/api/v1/console/load");
      render(status);
      if (!status.running && timer) {
        clearInterval(timer);
        timer = undefined;
      }
      return status;
    } catch (error) {
      replace(progressEl, errorBox(error));
      return undefined;
    }
  };
  const follow = () => {
    timer ??= setInterval(poll, 500);
  };
  stop.addEventListener("click", () => {
    void busy(stop, out, async () => {
      await api("DELETE", "/api/v1/console/load");
      return "Stopping: nothing more is sent; what was sent is awaited.";
    });
  });
  const form = actionForm(
    {
      submit: start,
      out,
      action: async () => {
        const status = await api<LoadStatus>("POST", "/api/v1/console/load", {
          rate: Number(rate.value),
          duration_s: Number(duration.value),
          severities: severities.value,
          sources: sources.value,
          names: names.value,
          context: context.value,
          ...(scope.value === "" ? {} : { scope: scope.value }),
        });
        render(status);
        follow();
        return null;
      },
    },
    h("h2", null, "Generate alerts"),
    h(
      "p",
      { class: "muted small" },
      "Runs the alert-producer's load generator inside the rule-service: alerts go to Kafka at the chosen rate. Lists are value:weight. Without a scope the alerts are internal and match every rule; with one, only the rules of clients granted it.",
    ),
    h("div", { class: "row" }, field("rate (alerts/s)", rate), field("duration (s)", duration)),
    h(
      "div",
      { class: "row" },
      field("severities", severities),
      field("sources", sources),
      field("names", names),
      field("context", context),
      field("scope", scope),
    ),
    h("div", { class: "row" }, start, stop),
  );
  replace(root, h("div", { class: "page-head" }, h("h1", null, "Load generator")), form, progressEl);
  void poll().then((status) => {
    if (!status) return;
    rate.max = String(status.limits.rate_max);
    duration.max = String(status.limits.duration_max_s);
    if (status.running) follow();
  });
  return () => clearInterval(timer);
}
