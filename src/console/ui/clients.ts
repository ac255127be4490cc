/** Clients (admin): list, create, and issue an API key (shown once). */
import { api, type Client, type Page, query } from "./api.ts";
import type { Context } from "./context.ts";
import { field, formatTime, h, replace } from "./dom.ts";
import { actionForm, errorBox, okBox, pagedTable } from "./widgets.ts";

export function clientsPage(ctx: Context, root: HTMLElement): undefined {
  const message = h("div", { "data-testid": "clients-message" });
  const newKeyButton = (c: Client) =>
    h(
      "button",
      {
        type: "button",
        class: "secondary small",
        "data-testid": "client-new-key",
        onclick: async () => {
          try {
            const key = await api<{ key: string }>("POST", `/api/v1/clients/${c.id}/api-keys`);
            replace(
              message,
              okBox(
                `API key for ${c.name} (shown once, copy it now): `,
                h("code", { class: "secret", "data-testid": "client-key" }, key.key),
              ),
            );
          } catch (error) {
            replace(message, errorBox(error));
          }
        },
      },
      "New API key",
    );
  const table = pagedTable<Client>({
    testid: "clients-table",
    empty: "No clients yet.",
    fetchPage: (cursor, limit) => api<Page<Client>>("GET", `/api/v1/clients${query({ cursor, limit })}`),
    rowAttrs: (c) => ({ "data-testid": "client-row", "data-client-id": c.id }),
    columns: [
      { title: "name", cell: (c) => h("strong", null, c.name) },
      { title: "id", cell: (c) => h("code", null, c.id) },
      { title: "version", cell: (c) => c.version, class: "num" },
      { title: "created", cell: (c) => formatTime(c.created_at) },
      {
        title: "",
        class: "actions",
        cell: (c) => [
          h(
            "button",
            { class: "secondary small", onclick: () => ctx.go(`#notifications?client_id=${c.id}`) },
            "Notifications",
          ),
          newKeyButton(c),
        ],
      },
    ],
  });
  const name = h("input", {
    placeholder: "client name",
    required: true,
    "data-testid": "client-create-name",
  });
  const out = h("div", { "data-testid": "client-create-message" });
  const submit = h("button", { type: "submit", "data-testid": "client-create-submit" }, "Create client");
  const form = actionForm(
    {
      submit,
      out,
      action: async () => {
        const client = await api<Client>("POST", "/api/v1/clients", { name: name.value });
        name.value = "";
        await table.reset();
        return [
          "Client ",
          h("strong", null, client.name),
          " created: ",
          h("code", null, client.id),
          newKeyButton(client),
        ];
      },
    },
    h("h2", null, "New client"),
    h("div", { class: "row" }, field("name", name), submit),
  );
  replace(root, h("div", { class: "page-head" }, h("h1", null, "Clients")), form, message, table.el);
  return undefined;
}
