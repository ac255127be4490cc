/** The live dashboard: stage charts from the server's scrape ring, notification and delivery stats. */
// The server's JSON shape, imported so the two cannot drift (a type import: nothing reaches the bundle).
import type { StageSeries } from "../stage-metrics.ts";
import { api } from "./api.ts";
import { barChart, lineChart, palette, type Series } from "./charts.ts";
import type { Context } from "./context.ts";
import { formatNumber, h, replace } from "./dom.ts";
import { errorBox } from "./widgets.ts";

interface Stats {
  minutes: number;
  notifications_by_status: Record<string, number>;
  deliveries_by_channel: {
    channel: string;
    total: number;
    success: number;
    retryable: number;
    permanent: number;
    success_rate: number | null;
  }[];
}

const statusColors: Record<string, string> = {
  RECEIVED: "#64748b",
  SENDING: "#0891b2",
  RETRY: "#d97706",
  SENT: "#16a34a",
  FAILED: "#dc2626",
};
const chartMinutes = 10;

export function dashboardPage(ctx: Context, root: HTMLElement): () => void {
  const admin = ctx.session.kind === "admin";
  let minutes = 15;
  const windowSelect = h(
    "select",
    {
      "data-testid": "stats-window",
      onchange: () => {
        minutes = Number(windowSelect.value);
        void refreshStats();
      },
    },
    [5, 15, 60, 360, 1440].map((m) =>
      h("option", { value: m, selected: m === minutes }, m < 60 ? `last ${m} min` : `last ${m / 60} h`),
    ),
  );
  const stagesEl = h("div", { class: "stack" });
  const statsEl = h("div", { class: "grid-2" });
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Dashboard"),
      h("span", { class: "muted", "data-testid": "dashboard-updated" }),
      h("span", { class: "spacer" }),
      windowSelect,
    ),
    admin
      ? stagesEl
      : h("p", { class: "muted" }, `Notifications and deliveries of ${ctx.session.client_name}.`),
    statsEl,
  );
  const updated = root.querySelector("[data-testid=dashboard-updated]") as HTMLElement;

  const refreshStages = async () => {
    try {
      const result = await api<{ interval_ms: number; now: number; stages: StageSeries[] }>(
        "GET",
        `/api/v1/console/stages?minutes=${chartMinutes}`,
      );
      replace(stagesEl, renderStages(result.stages, result.now, result.interval_ms));
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      replace(stagesEl, errorBox(error));
    }
  };
  const refreshStats = async () => {
    try {
      const stats = await api<Stats>("GET", `/api/v1/console/stats?minutes=${minutes}`);
      replace(statsEl, renderStats(stats));
    } catch (error) {
      replace(statsEl, errorBox(error));
    }
  };
  if (admin) void refreshStages();
  void refreshStats();
  const timers = [admin ? setInterval(refreshStages, 2000) : undefined, setInterval(refreshStats, 5000)];
  return () => {
    for (const timer of timers) if (timer) clearInterval(timer);
  };
}

function renderStages(stages: StageSeries[], now: number, intervalMs: number): HTMLElement {
  if (stages.length === 0) {
    return h(
      "div",
      { class: "card muted" },
      "No stages configured: set CONSOLE_STAGE_METRICS=evaluator=http://127.0.0.1:9102,... on the rule-service.",
    );
  }
  // The charts span the samples there are, up to the last chartMinutes.
  const first = Math.min(...stages.map((s) => s.points[0]?.t ?? now));
  const tMin = Math.max(now - chartMinutes * 60_000, Math.min(first, now - 60_000));
  const series = (pick: (p: StageSeries["points"][number]) => number | null): Series[] =>
    stages.map((stage, i) => ({
      label: stage.name,
      color: palette[i % palette.length] as string,
      points: stage.points.map((p) => ({ t: p.t, v: pick(p) })),
    }));
  const evaluators = stages.filter((s) => s.rules_version_applied !== null);
  return h(
    "div",
    { class: "stack" },
    h(
      "div",
      { class: "tiles", "data-testid": "stage-tiles" },
      stages.map((stage) =>
        h(
          "div",
          { class: `tile ${stage.up ? "" : "tile-down"}`, title: stage.last_error ?? stage.url },
          h("div", { class: "tile-name" }, stage.name),
          h("div", { class: "tile-value" }, stage.up ? (stage.ready === false ? "not ready" : "up") : "down"),
          h(
            "div",
            { class: "tile-note" },
            `lag ${formatNumber(stage.points.at(-1)?.lag ?? null)} · dlq ${formatNumber(stage.dead_lettered_total ?? 0)}`,
          ),
        ),
      ),
      evaluators.map((stage) =>
        h(
          "div",
          { class: "tile tile-accent", "data-testid": "rules-version" },
          h("div", { class: "tile-name" }, `rules version · ${stage.name}`),
          h("div", { class: "tile-value" }, String(stage.rules_version_applied)),
          h("div", { class: "tile-note" }, "rules_version_applied"),
        ),
      ),
    ),
    h(
      "div",
      { class: "grid-3" },
      lineChart(
        series((p) => p.consumed_per_s),
        { title: "Consumed", unit: "records/s", tMin, tMax: now, testid: "chart-consumed" },
      ),
      lineChart(
        series((p) => p.produced_per_s),
        { title: "Produced", unit: "records/s", tMin, tMax: now, testid: "chart-produced" },
      ),
      lineChart(
        series((p) => p.lag),
        { title: "Consumer lag", unit: "records", tMin, tMax: now, testid: "chart-lag" },
      ),
    ),
    h(
      "p",
      { class: "muted small" },
      `Each stage's /metrics scraped every ${intervalMs / 1000} s by the rule-service; up to the last ${chartMinutes} minutes.`,
    ),
  );
}

function renderStats(stats: Stats): HTMLElement[] {
  const statuses = ["RECEIVED", "SENDING", "RETRY", "SENT", "FAILED"];
  const total = statuses.reduce((sum, s) => sum + (stats.notifications_by_status[s] ?? 0), 0);
  return [
    barChart(
      statuses.map((status) => ({
        label: status,
        value: stats.notifications_by_status[status] ?? 0,
        color: statusColors[status] as string,
      })),
      {
        title: "Notifications by status",
        note: `${total.toLocaleString()} created in the last ${stats.minutes} min`,
        testid: "notifications-by-status",
      },
    ),
    h(
      "figure",
      { class: "card", "data-testid": "delivery-rates" },
      h(
        "figcaption",
        null,
        "Delivery success rate per channel",
        h("span", { class: "unit" }, `attempts, last ${stats.minutes} min`),
      ),
      stats.deliveries_by_channel.length === 0
        ? h("p", { class: "muted" }, "No delivery attempts in this window.")
        : h(
            "table",
            null,
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["channel", "success rate", "attempts", "success", "retryable", "permanent"].map((t) =>
                  h("th", null, t),
                ),
              ),
            ),
            h(
              "tbody",
              null,
              stats.deliveries_by_channel.map((c) =>
                h(
                  "tr",
                  null,
                  h("td", null, c.channel),
                  h(
                    "td",
                    null,
                    h(
                      "span",
                      { class: "rate" },
                      h("span", {
                        class: "rate-fill",
                        style: `width:${((c.success_rate ?? 0) * 100).toFixed(1)}%`,
                      }),
                    ),
                    ` ${c.success_rate === null ? "-" : `${(c.success_rate * 100).toFixed(1)}%`}`,
                  ),
                  h("td", { class: "num" }, c.total.toLocaleString()),
                  h("td", { class: "num" }, c.success.toLocaleString()),
                  h("td", { class: "num" }, c.retryable.toLocaleString()),
                  h("td", { class: "num" }, c.permanent.toLocaleString()),
                ),
              ),
            ),
          ),
    ),
  ];
}
