/**
 * Silences (admin: of every client, or the one picked; a client key: its own client's): listed with
 * their state and matchers, filtered by state, expired with one click, and created with Alertmanager
 * matchers and a duration. `#silences?id=<uuid>` (a SILENCED notification's link) shows that one.
 */
import { api, matchersText, type Page, query, type Silence } from "./api.ts";
import type { Context } from "./context.ts";
import { field, formatTime, h, replace } from "./dom.ts";
import {
  actionForm,
  badge,
  clientName,
  clientPicker,
  errorBox,
  filterSelect,
  pagedTable,
  resolveClientNames,
  shortId,
} from "./widgets.ts";

const states = ["active", "pending", "expired"];
const stateBadge = { active: "success", pending: "sending", expired: "retry" } as const;

export function silencesPage(ctx: Context, root: HTMLElement): undefined {
  const admin = ctx.session.kind === "admin";
  const initial = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const only = initial.get("id") ?? "";
  let state = "";
  let clientId = initial.get("client_id") ?? "";
  const message = h("div", { "data-testid": "silences-message" });

  const table = pagedTable<Silence>({
    testid: "silences-table",
    empty: "No silences match.",
    fetchPage: async (cursor, limit) => {
      const page =
        only !== ""
          ? { items: [await api<Silence>("GET", `/api/v1/silences/${only}`)], next_cursor: null }
          : await api<Page<Silence>>(
              "GET",
              `/api/v1/silences${query({ state, client_id: clientId, cursor, limit })}`,
            );
      if (admin) await resolveClientNames(page.items.map((s) => s.client_id));
      return page;
    },
    rowAttrs: (s) => ({ "data-testid": "silence-row", "data-silence-id": s.id }),
    columns: [
      { title: "id", cell: (s) => shortId(s.id) },
      ...(admin ? [{ title: "client", cell: (s: Silence) => clientName(s.client_id) }] : []),
      {
        title: "state",
        cell: (s) => h("span", { "data-testid": "silence-state" }, badge(s.state, stateBadge[s.state])),
      },
      { title: "matchers", cell: (s) => h("code", { class: "wrap" }, matchersText(s.matchers)) },
      { title: "starts", cell: (s) => formatTime(s.starts_at) },
      { title: "ends", cell: (s) => formatTime(s.ends_at) },
      { title: "by", cell: (s) => s.created_by },
      { title: "comment", cell: (s) => h("span", { class: "muted wrap" }, s.comment) },
      {
        title: "",
        class: "actions",
        cell: (s) =>
          s.state === "expired"
            ? null
            : h(
                "button",
                {
                  class: "secondary small",
                  "data-testid": "silence-expire",
                  onclick: async () => {
                    try {
                      await api("DELETE", `/api/v1/silences/${s.id}`);
                      replace(message);
                      await table.reload();
                    } catch (error) {
                      replace(message, errorBox(error));
                    }
                  },
                },
                "Expire",
              ),
      },
    ],
  });

  const stateSelect = filterSelect({
    testid: "silences-filter-state",
    any: "any state",
    values: states,
    onChange: (value) => {
      state = value;
      void table.reset();
    },
  });
  const filterPicker = admin
    ? clientPicker({
        testid: "silences-filter-client",
        label: "client",
        all: "all clients",
        selected: clientId,
        onChange: (id) => {
          clientId = id;
          void table.reset();
        },
      }).el
    : null;

  const createPicker = admin ? clientPicker({ testid: "silence-create-client", label: "client" }) : undefined;
  const matchers = h("input", {
    placeholder: '{severity="HIGH", source=~"db-.*"}',
    required: true,
    "data-testid": "silence-create-matchers",
  });
  const hours = h("input", {
    type: "number",
    min: "0.1",
    step: "0.1",
    value: "2",
    required: true,
    "data-testid": "silence-create-hours",
  });
  const comment = h("input", { placeholder: "why", required: true, "data-testid": "silence-create-comment" });
  const out = h("div", { "data-testid": "silence-create-message" });
  const submit = h("button", { type: "submit", "data-testid": "silence-create-submit" }, "Create");
  const form = actionForm(
    {
      submit,
      out,
      action: async () => {
        const created = await api<Silence>("POST", "/api/v1/silences", {
          client_id: createPicker?.value() || undefined,
          matchers: matchers.value,
          ends_at: new Date(Date.now() + Number(hours.value) * 3_600_000).toISOString(),
          created_by: admin ? "admin (console)" : `${ctx.session.client_name ?? "client"} (console)`,
          comment: comment.value,
        });
        matchers.value = "";
        comment.value = "";
        await table.reset();
        return ["Silence created: ", h("code", { "data-testid": "silence-created-id" }, created.id)];
      },
    },
    h("h2", null, "New silence"),
    h(
      "p",
      { class: "muted small" },
      "Matching alerts still get a notification row, SILENCED and never sent, naming the silence.",
    ),
    h(
      "div",
      { class: "row" },
      createPicker?.el,
      field("matchers", matchers),
      field("hours", hours),
      field("comment", comment),
      submit,
    ),
  );

  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Silences"),
      h("span", { class: "spacer" }),
      only === ""
        ? [field("state", stateSelect), filterPicker]
        : h("a", { href: "#silences" }, "all silences"),
    ),
    form,
    message,
    table.el,
  );
  return undefined;
}
