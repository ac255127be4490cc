/** Rules (create with wildcards, edit with version-conflict handling, enable/disable, delete) and endpoints. */
import { ApiError, api, type Endpoint, type Page, query, type Rule } from "./api.ts";
import type { Context } from "./context.ts";
import { field, formatTime, h, replace } from "./dom.ts";
import { deliveryForm, deliverySummary } from "./rule-delivery.ts";
import {
  actionForm,
  badge,
  busy,
  clientName,
  clientPicker,
  errorBox,
  okBox,
  pagedTable,
  resolveClientNames,
  shortId,
} from "./widgets.ts";

const severities = ["*", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

function severitySelect(testid: string, selected = "*"): HTMLSelectElement {
  return h(
    "select",
    { "data-testid": testid },
    severities.map((s) => h("option", { value: s, selected: s === selected }, s === "*" ? "* (any)" : s)),
  );
}

/** Two clicks: the first arms the button, the second (within 4 s) runs `action`. */
function confirmButton(label: string, testid: string, action: () => Promise<void>): HTMLButtonElement {
  const button = h("button", { class: "danger small", "data-testid": testid }, label);
  let armed = false;
  button.addEventListener("click", () => {
    if (!armed) {
      armed = true;
      button.textContent = "Confirm?";
      setTimeout(() => {
        armed = false;
        button.textContent = label;
      }, 4000);
      return;
    }
    armed = false;
    button.disabled = true;
    void action().finally(() => {
      button.disabled = false;
      button.textContent = label;
    });
  });
  return button;
}

function isConflict(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 409 && error.body.code === "version_conflict";
}

export function rulesPage(ctx: Context, root: HTMLElement): undefined {
  const admin = ctx.session.kind === "admin";
  const message = h("div", { "data-testid": "rules-message" });
  const editor = h("div");
  let filterClient = "";

  const table = pagedTable<Rule>({
    testid: "rules-table",
    empty: "No rules yet.",
    fetchPage: async (cursor, limit) => {
      const page = await api<Page<Rule>>(
        "GET",
        `/api/v1/rules${query({ client_id: filterClient, cursor, limit })}`,
      );
      if (admin) await resolveClientNames(page.items.map((r) => r.client_id));
      return page;
    },
    rowAttrs: (rule) => ({ "data-testid": "rule-row", "data-rule-id": rule.id }),
    columns: [
      ...(admin ? [{ title: "client", cell: (r: Rule) => clientName(r.client_id) }] : []),
      { title: "severity", cell: (r) => h("code", null, r.severity) },
      { title: "source", cell: (r) => h("code", null, r.source) },
      { title: "name", cell: (r) => h("code", null, r.name) },
      {
        title: "enabled",
        cell: (r) =>
          h(
            "button",
            {
              class: `toggle ${r.enabled ? "on" : "off"}`,
              "data-testid": "rule-toggle",
              title: r.enabled ? "click to disable" : "click to enable",
              onclick: () => void toggle(r),
            },
            r.enabled ? "enabled" : "disabled",
          ),
      },
      { title: "delivery", cell: (r) => h("span", { class: "muted small" }, deliverySummary(r)) },
      { title: "version", cell: (r) => r.version, class: "num" },
      { title: "updated", cell: (r) => formatTime(r.updated_at) },
      {
        title: "",
        class: "actions",
        cell: (r) => [
          h(
            "button",
            { class: "secondary small", "data-testid": "rule-edit", onclick: () => edit(r) },
            "Edit",
          ),
          h(
            "button",
            {
              class: "secondary small",
              "data-testid": "rule-endpoints",
              onclick: () => ctx.go(`#endpoints/${r.id}`),
            },
            "Endpoints",
          ),
          confirmButton("Delete", "rule-delete", () => remove(r)),
        ],
      },
    ],
  });

  const reloadAction = (label = "Reload") =>
    h(
      "button",
      {
        class: "secondary small",
        "data-testid": "conflict-reload",
        onclick: () => {
          replace(message);
          void table.reload();
        },
      },
      label,
    );

  const toggle = async (rule: Rule) => {
    try {
      await api("PATCH", `/api/v1/rules/${rule.id}`, { enabled: !rule.enabled, version: rule.version });
      replace(message, okBox(`Rule ${rule.enabled ? "disabled" : "enabled"}.`));
      await table.reload();
    } catch (error) {
      replace(message, conflictBox(error, reloadAction()));
    }
  };
  const remove = async (rule: Rule) => {
    try {
      await api("DELETE", `/api/v1/rules/${rule.id}?version=${rule.version}`);
      replace(message, okBox("Rule deleted with its endpoints."));
      await table.reload();
    } catch (error) {
      replace(message, conflictBox(error, reloadAction()));
    }
  };

  const edit = (rule: Rule) => {
    let version = rule.version;
    const severity = severitySelect("rule-edit-severity", rule.severity);
    const source = h("input", { value: rule.source, "data-testid": "rule-edit-source", required: true });
    const name = h("input", { value: rule.name, "data-testid": "rule-edit-name", required: true });
    const enabled = h("input", {
      type: "checkbox",
      checked: rule.enabled,
      "data-testid": "rule-edit-enabled",
    });
    const delivery = deliveryForm("rule-edit");
    delivery.fill(rule);
    const versionLabel = h("span", { class: "muted" }, `editing version ${version}`);
    const out = h("div", { "data-testid": "rule-edit-message" });
    const save = h("button", { type: "submit", "data-testid": "rule-edit-save" }, "Save");
    const fill = (r: Rule) => {
      version = r.version;
      severity.value = r.severity;
      source.value = r.source;
      name.value = r.name;
      enabled.checked = r.enabled;
      delivery.fill(r);
      versionLabel.textContent = `editing version ${version}`;
    };
    const put = async (atVersion: number) => {
      const body = {
        severity: severity.value,
        source: source.value,
        name: name.value,
        enabled: enabled.checked,
        ...delivery.values(),
        version: atVersion,
      };
      const updated = await api<Rule>("PUT", `/api/v1/rules/${rule.id}`, body);
      replace(editor);
      replace(message, okBox(`Rule saved (version ${updated.version}).`));
      await table.reload();
    };
    const form = h(
      "form",
      {
        class: "card form",
        "data-testid": "rule-edit-form",
        onsubmit: (event: Event) => {
          event.preventDefault();
          save.disabled = true;
          put(version)
            .catch((error: unknown) => {
              if (!isConflict(error)) return replace(out, errorBox(error));
              const current = error.body.current_version;
              replace(
                out,
                errorBox(
                  error,
                  h(
                    "span",
                    null,
                    ` Someone changed this rule: you edited version ${version}, it is now at ${current}.`,
                  ),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "secondary small",
                      "data-testid": "rule-edit-reload",
                      onclick: async () => {
                        try {
                          fill(await api<Rule>("GET", `/api/v1/rules/${rule.id}`));
                          replace(out, okBox("Reloaded the current version; your edits were discarded."));
                          await table.reload();
                        } catch (reloadError) {
                          replace(out, errorBox(reloadError));
                        }
                      },
                    },
                    "Reload current version",
                  ),
                  current === undefined
                    ? null
                    : h(
                        "button",
                        {
                          type: "button",
                          class: "danger small",
                          "data-testid": "rule-edit-overwrite",
                          onclick: () => put(current).catch((e: unknown) => replace(out, errorBox(e))),
                        },
                        "Overwrite with my edits",
                      ),
                ),
              );
            })
            .finally(() => {
              save.disabled = false;
            });
        },
      },
      h("h2", null, "Edit rule ", shortId(rule.id), " ", versionLabel),
      h(
        "div",
        { class: "row" },
        field("severity", severity),
        field("source", source),
        field("name", name),
        h("label", { class: "check" }, enabled, " enabled"),
        save,
        h("button", { type: "button", class: "secondary", onclick: () => replace(editor) }, "Cancel"),
      ),
      delivery.el,
      out,
    );
    replace(editor, form);
    source.focus();
  };

  // The create form.
  const createClient = clientPicker({ testid: "rule-create-client", label: "client" });
  const createSeverity = severitySelect("rule-create-severity");
  const createSource = h("input", {
    placeholder: "* for any source",
    "data-testid": "rule-create-source",
    required: true,
  });
  const createName = h("input", {
    placeholder: "* for any name",
    "data-testid": "rule-create-name",
    required: true,
  });
  const createEnabled = h("input", { type: "checkbox", checked: true });
  const createDelivery = deliveryForm("rule-create");
  const createOut = h("div", { "data-testid": "rule-create-message" });
  const createButton = h("button", { type: "submit", "data-testid": "rule-create-submit" }, "Create rule");
  const createForm = actionForm(
    {
      submit: createButton,
      out: createOut,
      action: async () => {
        const rule = await api<Rule>("POST", "/api/v1/rules", {
          ...(admin ? { client_id: createClient.value() } : {}),
          severity: createSeverity.value,
          source: createSource.value,
          name: createName.value,
          enabled: createEnabled.checked,
          ...createDelivery.values(),
        });
        await table.reset();
        return [
          "Rule created: ",
          shortId(rule.id),
          " ",
          h("a", { href: `#endpoints/${rule.id}` }, "add endpoints →"),
        ];
      },
    },
    h("h2", null, "New rule"),
    h("p", { class: "muted small" }, "Each field is an exact value or * to match any alert."),
    h(
      "div",
      { class: "row" },
      admin ? createClient.el : null,
      field("severity", createSeverity),
      field("source", createSource),
      field("name", createName),
      h("label", { class: "check" }, createEnabled, " enabled"),
      createButton,
    ),
    createDelivery.el,
  );

  const filter = admin
    ? clientPicker({
        testid: "rules-filter-client",
        label: "client",
        all: "all clients",
        onChange: (id) => {
          filterClient = id;
          void table.reset();
        },
      }).el
    : null;
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Rules"), h("span", { class: "spacer" }), filter),
    createForm,
    editor,
    message,
    table.el,
  );
  return undefined;
}

function conflictBox(error: unknown, reload: HTMLElement): HTMLElement {
  if (isConflict(error)) {
    return errorBox(
      error,
      h(
        "span",
        null,
        ` The rule changed since this page loaded (now version ${error.body.current_version}). `,
      ),
      reload,
    );
  }
  return errorBox(error);
}

export function endpointsPage(ctx: Context, root: HTMLElement, params: string[]): undefined {
  const ruleId = params[0] ?? "";
  const head = h("div", { class: "card" }, "loading rule...");
  const message = h("div", { "data-testid": "endpoints-message" });
  const table = pagedTable<Endpoint>({
    testid: "endpoints-table",
    empty: "No endpoints: notifications of this rule go nowhere.",
    fetchPage: (cursor, limit) =>
      api<Page<Endpoint>>("GET", `/api/v1/rules/${ruleId}/endpoints${query({ cursor, limit })}`),
    rowAttrs: (e) => ({ "data-testid": "endpoint-row", "data-endpoint-id": e.id }),
    columns: [
      { title: "type", cell: (e) => badge(e.type, "neutral") },
      { title: "value", cell: (e) => h("code", { class: "wrap" }, e.value) },
      { title: "enabled", cell: (e) => (e.enabled ? "yes" : "no") },
      { title: "secret", cell: (e) => (e.has_secret ? "set" : "-") },
      { title: "version", cell: (e) => e.version, class: "num" },
      { title: "created", cell: (e) => formatTime(e.created_at) },
      {
        title: "",
        class: "actions",
        cell: (e) => [
          h(
            "button",
            {
              class: "small",
              "data-testid": "endpoint-test",
              onclick: async (event: Event) => {
                const button = event.currentTarget as HTMLButtonElement;
                await busy(button, message, async () => {
                  const result = await api<{ notification_id: string; produced: boolean }>(
                    "POST",
                    `/api/v1/console/endpoints/${e.id}/test`,
                  );
                  return [
                    "Test notification ",
                    h("a", { href: `#notification/${result.notification_id}` }, `#${result.notification_id}`),
                    result.produced
                      ? " queued: the sender delivers it to this rule's enabled endpoints."
                      : " stored; the sender's scheduler picks it up within a few seconds.",
                  ];
                });
              },
            },
            "Send test",
          ),
          confirmButton("Delete", "endpoint-delete", async () => {
            try {
              await api("DELETE", `/api/v1/endpoints/${e.id}?version=${e.version}`);
              replace(message, okBox("Endpoint deleted."));
            } catch (error) {
              replace(message, errorBox(error));
            }
            await table.reload();
          }),
        ],
      },
    ],
  });

  const type = h(
    "select",
    { "data-testid": "endpoint-create-type" },
    ["webhook", "slack", "email"].map((t) => h("option", { value: t }, t)),
  );
  const value = h("input", {
    placeholder: "https://example.com/hook or a@b.example",
    "data-testid": "endpoint-create-value",
    required: true,
    class: "wide",
  });
  const secret = h("input", { placeholder: "optional, webhook only (16+ chars)", type: "password" });
  const out = h("div", { "data-testid": "endpoint-create-message" });
  const submit = h("button", { type: "submit", "data-testid": "endpoint-create-submit" }, "Add endpoint");
  const form = actionForm(
    {
      submit,
      out,
      action: async () => {
        await api("POST", `/api/v1/rules/${ruleId}/endpoints`, {
          type: type.value,
          value: value.value,
          ...(secret.value ? { secret: secret.value } : {}),
        });
        value.value = "";
        secret.value = "";
        await table.reset();
        return "Endpoint added.";
      },
    },
    h("h2", null, "New endpoint"),
    h(
      "div",
      { class: "row" },
      field("type", type),
      field("value", value),
      field("signing secret", secret),
      submit,
    ),
  );
  replace(
    root,
    h("div", { class: "page-head" }, h("a", { href: "#rules" }, "← Rules"), h("h1", null, "Endpoints")),
    head,
    form,
    message,
    table.el,
  );
  void api<Rule>("GET", `/api/v1/rules/${ruleId}`).then(
    (rule) =>
      replace(
        head,
        h(
          "div",
          { class: "rule-summary" },
          "Rule ",
          shortId(rule.id),
          ": severity ",
          h("code", null, rule.severity),
          " source ",
          h("code", null, rule.source),
          " name ",
          h("code", null, rule.name),
          " · ",
          rule.enabled ? "enabled" : "disabled",
          ctx.session.kind === "admin" ? h("span", { class: "muted" }, ` · client ${rule.client_id}`) : null,
        ),
      ),
    (error: unknown) => replace(head, errorBox(error)),
  );
  return undefined;
}
