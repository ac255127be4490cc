/** Notifications with status and client filters, and one notification with its delivery attempts. */
import {
  api,
  type Delivery,
  type GroupSend,
  matchersText,
  type Notification,
  type Page,
  query,
  type Silence,
} from "./api.ts";
import type { Context } from "./context.ts";
import { field, formatTime, h, replace } from "./dom.ts";
import {
  badge,
  clientName,
  clientPicker,
  errorBox,
  filterSelect,
  pagedTable,
  resolveClientNames,
} from "./widgets.ts";

const statuses = ["RECEIVED", "SENDING", "RETRY", "SENT", "FAILED", "SILENCED"];

/** Why a SILENCED notification was not sent: the silence, or the rule's mute window, as a link. */
function suppression(n: Notification): HTMLElement | null {
  if (n.silenced_by !== null)
    return h(
      "a",
      { href: `#silences?id=${n.silenced_by}`, "data-testid": "silenced-by" },
      `silence ${n.silenced_by.slice(0, 8)}`,
    );
  if (n.muted_by_rule !== null)
    return h(
      "a",
      { href: `#endpoints/${n.muted_by_rule}`, "data-testid": "muted-by-rule" },
      `mute window of rule ${n.muted_by_rule.slice(0, 8)}`,
    );
  return null;
}

export function notificationsPage(ctx: Context, root: HTMLElement): () => void {
  const admin = ctx.session.kind === "admin";
  // Filters can come in the hash: #notifications?status=SENT&client_id=...
  const initial = new URLSearchParams(location.hash.split("?")[1] ?? "");
  let status = initial.get("status") ?? "";
  let clientId = initial.get("client_id") ?? "";

  const table = pagedTable<Notification>({
    testid: "notifications-table",
    empty: "No notifications match.",
    fetchPage: async (cursor, limit) => {
      const page = await api<Page<Notification>>(
        "GET",
        `/api/v1/notifications${query({ status, client_id: clientId, cursor, limit })}`,
      );
      if (admin) await resolveClientNames(page.items.map((n) => n.client_id));
      return page;
    },
    rowAttrs: (n) => ({
      "data-testid": "notification-row",
      "data-notification-id": n.id,
      class: "clickable",
      onclick: () => ctx.go(`#notification/${n.id}`),
    }),
    columns: [
      { title: "id", cell: (n) => h("a", { href: `#notification/${n.id}` }, `#${n.id}`) },
      { title: "created", cell: (n) => formatTime(n.created_at) },
      ...(admin ? [{ title: "client", cell: (n: Notification) => clientName(n.client_id) }] : []),
      { title: "severity", cell: (n) => badge(n.severity) },
      { title: "source", cell: (n) => h("code", null, n.source) },
      { title: "name", cell: (n) => n.name },
      { title: "kind", cell: (n) => (n.episode === 0 ? n.kind : `${n.kind} (episode ${n.episode})`) },
      { title: "status", cell: (n) => badge(n.status) },
      { title: "attempts", cell: (n) => n.attempts, class: "num" },
      {
        title: "group",
        cell: (n) =>
          n.group_send_id !== null
            ? h("code", { "data-testid": "notification-group-send" }, `send #${n.group_send_id}`)
            : h("span", { class: "muted" }, n.group_key === null ? "" : "waiting"),
      },
      {
        title: "last error / why silenced",
        cell: (n) => suppression(n) ?? h("span", { class: "muted wrap" }, n.last_error ?? ""),
      },
    ],
  });

  const statusSelect = filterSelect({
    testid: "notifications-filter-status",
    any: "any status",
    values: statuses,
    selected: status,
    onChange: (value) => {
      status = value;
      void table.reset();
    },
  });
  const clientFilter = h("span");
  const refresh = h("button", { class: "secondary", onclick: () => void table.reload() }, "Refresh");
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Notifications"),
      h("span", { class: "spacer" }),
      field("status", statusSelect),
      clientFilter,
      refresh,
    ),
    table.el,
  );
  if (admin) {
    replace(
      clientFilter,
      clientPicker({
        testid: "notifications-filter-client",
        label: "client",
        all: "all clients",
        selected: clientId,
        onChange: (id) => {
          clientId = id;
          void table.reset();
        },
      }).el,
    );
  }
  // New notifications arrive all the time: keep the current page fresh.
  const timer = setInterval(() => void table.reload(), 5000);
  return () => clearInterval(timer);
}

export function notificationPage(_ctx: Context, root: HTMLElement, params: string[]): () => void {
  const id = params[0] ?? "";
  const body = h("div", null, "loading...");
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("a", { href: "#notifications" }, "← Notifications"),
      h("h1", null, `Notification #${id}`),
    ),
    body,
  );
  const load = async () => {
    try {
      const n = await api<Notification>("GET", `/api/v1/notifications/${id}`);
      const silence =
        n.silenced_by === null
          ? undefined
          : await api<Silence>("GET", `/api/v1/silences/${n.silenced_by}`).catch(() => undefined);
      replace(body, renderNotification(n, silence));
      return n.status === "SENT" || n.status === "FAILED" || n.status === "SILENCED";
    } catch (error) {
      replace(body, errorBox(error));
      return true;
    }
  };
  // Until it is terminal, its status and attempts change: poll.
  let timer: ReturnType<typeof setInterval> | undefined = setInterval(async () => {
    if (await load()) {
      clearInterval(timer);
      timer = undefined;
    }
  }, 2000);
  void load();
  return () => clearInterval(timer);
}

function renderNotification(n: Notification, silence: Silence | undefined): HTMLElement {
  const row = (label: string, value: unknown) =>
    h("tr", null, h("th", null, label), h("td", null, value as HTMLElement | string));
  return h(
    "div",
    { class: "stack", "data-testid": "notification-detail", "data-status": n.status },
    h(
      "div",
      { class: "card" },
      h(
        "table",
        { class: "kv" },
        h(
          "tbody",
          null,
          row("status", badge(n.status)),
          row("kind", n.episode === 0 ? n.kind : `${n.kind}, episode ${n.episode}`),
          n.status === "SILENCED" &&
            row(
              "why silenced",
              h(
                "span",
                { "data-testid": "notification-suppression" },
                suppression(n),
                silence ? h("code", null, ` ${matchersText(silence.matchers)} `) : null,
                silence ? h("span", { class: "muted" }, `${silence.comment} (${silence.created_by})`) : null,
              ),
            ),
          row("client", h("code", null, n.client_id)),
          row("alert id", h("code", null, n.alert_id)),
          ...(n.route === "" ? [] : [row("route", h("code", null, n.route))]),
          row("severity", badge(n.severity)),
          row("source / name", h("code", null, `${n.source} / ${n.name}`)),
          row("event time", formatTime(n.event_time)),
          row("created", formatTime(n.created_at)),
          row("attempts", String(n.attempts)),
          row("next attempt", formatTime(n.next_attempt_at)),
          row("last error", n.last_error ?? "-"),
          row(
            "rules",
            h(
              "span",
              null,
              n.rule_ids.map((r) => h("code", null, `${r} `)),
            ),
          ),
          row("context", h("pre", null, JSON.stringify(n.context, null, 2))),
        ),
      ),
    ),
    ...(n.group_send ? [groupSendCard(n.group_send)] : []),
    // A grouped notification's attempts are its group message's.
    ...(n.group_key !== null && (n.deliveries ?? []).length === 0
      ? []
      : [
          h(
            "div",
            { class: "card" },
            h("h2", null, `Delivery attempts (${n.deliveries?.length ?? 0})`),
            deliveriesTable("deliveries-table", n.deliveries ?? []),
          ),
        ]),
  );
}

/**
 * The group message a grouped notification went out in: its window, key and size, and the attempts
 * to this notification's endpoints; those to the window's other rules' endpoints are only counted.
 */
function groupSendCard(send: GroupSend): HTMLElement {
  const carried = send.deliveries.filter((d) => d.carried);
  const others = send.deliveries.length - carried.length;
  const row = (label: string, value: HTMLElement | string) =>
    h("tr", null, h("th", null, label), h("td", null, value));
  const labels = Object.entries(send.labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(", ");
  return h(
    "div",
    { class: "card", "data-testid": "group-send", "data-group-send-id": send.id },
    h("h2", null, `Group message #${send.id}`),
    h(
      "table",
      { class: "kv" },
      h(
        "tbody",
        null,
        row("status", badge(send.status)),
        row("group", h("code", null, labels)),
        row("group key", h("code", null, send.group_key)),
        row("window", String(send.window_no)),
        row("Idempotency-Key", h("code", null, send.idempotency_key)),
        row("alerts", String(send.alerts)),
        row("attempts", String(send.attempts)),
        row("opened", formatTime(send.created_at)),
      ),
    ),
    deliveriesTable("group-deliveries-table", carried),
    others === 0
      ? null
      : h(
          "p",
          { class: "muted small", "data-testid": "group-deliveries-others" },
          `and ${others} attempt${others === 1 ? "" : "s"} to endpoints of the window's other rules`,
        ),
  );
}

function deliveriesTable(
  testid: string,
  deliveries: readonly (Delivery & { alerts?: number })[],
): HTMLElement {
  const headers = ["attempted", "channel", "endpoint", "outcome", "HTTP / SMTP", "latency", "error"];
  return h(
    "table",
    { "data-testid": testid },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        headers.map((t) => h("th", null, t)),
      ),
    ),
    h(
      "tbody",
      null,
      deliveries.length === 0
        ? h("tr", null, h("td", { colspan: headers.length, class: "muted" }, "No attempt yet."))
        : deliveries.map((d) =>
            h(
              "tr",
              { "data-testid": "delivery-row", "data-outcome": d.outcome },
              h("td", null, formatTime(d.attempted_at)),
              h("td", null, d.alerts === undefined ? d.channel : `${d.channel} (${d.alerts} alerts)`),
              h("td", null, h("code", { title: d.endpoint_id }, d.endpoint_id.slice(0, 8))),
              h("td", null, badge(d.outcome)),
              h("td", null, d.http_status !== null ? String(d.http_status) : (d.smtp_reply ?? "-")),
              h("td", { class: "num" }, `${d.latency_ms} ms`),
              h("td", { class: "muted wrap" }, d.error ?? ""),
            ),
          ),
    ),
  );
}
