/**
 * Keys (admin: of the client picked; a client key: its own client's): API keys and ingest credentials,
 * listed with their state, revoked with one click, and created with a name and an optional expiry.
 * A new secret is shown once, right after it is created; the server keeps only its digest.
 */
import { api, type Page, query } from "./api.ts";
import type { Context } from "./context.ts";
import { type Child, field, formatTime, h, replace } from "./dom.ts";
import { actionForm, badge, clientPicker, errorBox, type PagedTable, pagedTable } from "./widgets.ts";

interface SecretRow {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

interface IngestCredentialRow extends SecretRow {
  scope: string;
}

/** What to call one kind of secret in the page, and where the API keeps it. */
interface SecretKind<T extends SecretRow> {
  /** Test ids and headings derive from it: "api-key", "ingest-credential". */
  testid: string;
  title: string;
  /** One of them, for the create form's heading. */
  noun: string;
  listPath(clientId: string, cursor: string | null, limit: number): string;
  revokePath(id: string): string;
  create(clientId: string, name: string, expiresAt: string | undefined): Promise<{ secret: string }>;
  /** Columns beyond name, prefix and the times. */
  extraColumns: { title: string; cell: (row: T) => Child }[];
  usage: string;
}

const apiKeys: SecretKind<SecretRow> = {
  testid: "api-key",
  title: "API keys",
  noun: "API key",
  listPath: (clientId, cursor, limit) => `/api/v1/clients/${clientId}/api-keys${query({ cursor, limit })}`,
  revokePath: (id) => `/api/v1/api-keys/${id}`,
  create: async (clientId, name, expiresAt) => {
    const body = { name, expires_at: expiresAt };
    const { key } = await api<{ key: string }>("POST", `/api/v1/clients/${clientId}/api-keys`, body);
    return { secret: key };
  },
  extraColumns: [],
  usage: "for the API and this console: Authorization: Bearer <key>",
};

const ingestCredentials: SecretKind<IngestCredentialRow> = {
  testid: "ingest-credential",
  title: "Ingest credentials",
  noun: "ingest credential",
  listPath: (clientId, cursor, limit) =>
    `/api/v1/ingest-credentials${query({ client_id: clientId, cursor, limit })}`,
  revokePath: (id) => `/api/v1/ingest-credentials/${id}`,
  create: (clientId, name, expiresAt) =>
    api<{ secret: string }>("POST", "/api/v1/ingest-credentials", {
      name,
      client_id: clientId,
      expires_at: expiresAt,
    }),
  extraColumns: [{ title: "scope", cell: (c) => h("code", null, c.scope) }],
  usage: "for sending alerts: Authorization: Bearer <secret>, or as the password of basic auth",
};

function stateOf(row: SecretRow): HTMLElement {
  if (row.revoked_at !== null) return badge("revoked", "failed");
  if (row.expires_at !== null && Date.parse(row.expires_at) <= Date.now()) return badge("expired", "retry");
  return badge("active", "success");
}

/** One kind's table, revoke buttons and create form; `clientId()` is "" until a client is chosen. */
function secretSection<T extends SecretRow>(kind: SecretKind<T>, clientId: () => string) {
  const message = h("div", { "data-testid": `${kind.testid}-message` });
  const table: PagedTable = pagedTable<T>({
    testid: `${kind.testid}s-table`,
    empty: "None yet.",
    fetchPage: (cursor, limit) =>
      clientId() === ""
        ? Promise.resolve({ items: [], next_cursor: null })
        : api<Page<T>>("GET", kind.listPath(clientId(), cursor, limit)),
    rowAttrs: (row) => ({ "data-testid": `${kind.testid}-row`, "data-id": row.id }),
    columns: [
      { title: "name", cell: (row) => h("strong", null, row.name || "-") },
      { title: "prefix", cell: (row) => h("code", null, `${row.prefix}…`) },
      ...kind.extraColumns,
      { title: "created", cell: (row) => formatTime(row.created_at) },
      { title: "expires", cell: (row) => (row.expires_at === null ? "never" : formatTime(row.expires_at)) },
      { title: "state", cell: (row) => h("span", { "data-testid": `${kind.testid}-state` }, stateOf(row)) },
      {
        title: "",
        class: "actions",
        cell: (row) =>
          row.revoked_at === null
            ? h(
                "button",
                {
                  class: "secondary small",
                  "data-testid": `${kind.testid}-revoke`,
                  onclick: async () => {
                    try {
                      await api("DELETE", kind.revokePath(row.id));
                      replace(message);
                      await table.reload();
                    } catch (error) {
                      replace(message, errorBox(error));
                    }
                  },
                },
                "Revoke",
              )
            : null,
      },
    ],
  });

  const name = h("input", {
    placeholder: "what it is for",
    required: kind.testid === "ingest-credential",
    "data-testid": `${kind.testid}-create-name`,
  });
  const expires = h("input", { type: "datetime-local", "data-testid": `${kind.testid}-create-expires` });
  const out = h("div", { "data-testid": `${kind.testid}-create-message` });
  const submit = h("button", { type: "submit", "data-testid": `${kind.testid}-create-submit` }, "Create");
  const form = actionForm(
    {
      submit,
      out,
      action: async () => {
        if (clientId() === "") throw new Error("Choose a client first.");
        // datetime-local is the browser's local time; the API takes an absolute RFC 3339 time.
        const expiresAt = expires.value === "" ? undefined : new Date(expires.value).toISOString();
        const { secret } = await kind.create(clientId(), name.value, expiresAt);
        name.value = "";
        expires.value = "";
        await table.reset();
        return [
          "Created. Copy it now, it is not shown again: ",
          h("code", { class: "secret", "data-testid": `${kind.testid}-secret` }, secret),
          h("div", { class: "muted small" }, kind.usage),
        ];
      },
    },
    h("h2", null, `New ${kind.noun}`),
    h("div", { class: "row" }, field("name", name), field("expires (optional)", expires), submit),
  );
  return { el: h("section", null, h("h2", null, kind.title), form, message, table.el), table };
}

export function keysPage(ctx: Context, root: HTMLElement): undefined {
  const own = ctx.session.kind === "client" ? (ctx.session.client_id ?? "") : undefined;
  let chosen = own ?? "";
  const sections = [secretSection(apiKeys, () => chosen), secretSection(ingestCredentials, () => chosen)];
  const picker =
    own === undefined
      ? clientPicker({
          testid: "keys-client",
          label: "client",
          all: "choose a client",
          onChange: (id) => {
            chosen = id;
            for (const section of sections) void section.table.reset();
          },
        }).el
      : null;
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Keys"), h("span", { class: "spacer" }), picker),
    sections.map((s) => s.el),
  );
  return undefined;
}
