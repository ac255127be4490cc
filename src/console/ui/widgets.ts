/** Shared pieces of the pages: a cursor-paged table, messages, and the client list for selects. */
import { ApiError, api, type Page } from "./api.ts";
import { type Child, h, replace } from "./dom.ts";

export interface Column<T> {
  title: string;
  cell: (item: T) => Child;
  class?: string;
}

export interface PagedTable {
  el: HTMLElement;
  /** Reloads the current page. */
  reload(): Promise<void>;
  /** Back to the first page (after a filter changed). */
  reset(): Promise<void>;
}

/**
 * A table over a cursor-paginated list: next follows next_cursor, prev goes back through the cursors
 * seen, so any number of items is reachable and nothing is cut off at a page size.
 */
export function pagedTable<T>(options: {
  fetchPage: (cursor: string | null, limit: number) => Promise<Page<T>>;
  columns: Column<T>[];
  empty: string;
  testid: string;
  limit?: number;
  rowAttrs?: (item: T) => Record<string, unknown>;
}): PagedTable {
  const limit = options.limit ?? 25;
  const cursors: (string | null)[] = [null];
  let next: string | null = null;
  const body = h("tbody");
  const status = h("span", { class: "muted" });
  const prevButton = h("button", { class: "secondary", "data-testid": `${options.testid}-prev` }, "‹ Prev");
  const nextButton = h("button", { class: "secondary", "data-testid": `${options.testid}-next` }, "Next ›");
  const message = h("div");

  const load = async () => {
    const cursor = cursors.at(-1) ?? null;
    try {
      const page = await options.fetchPage(cursor, limit);
      next = page.next_cursor;
      replace(
        body,
        page.items.length === 0
          ? h("tr", null, h("td", { colspan: options.columns.length, class: "muted" }, options.empty))
          : page.items.map((item) =>
              h(
                "tr",
                options.rowAttrs?.(item) ?? null,
                options.columns.map((c) => h("td", { class: c.class }, c.cell(item))),
              ),
            ),
      );
      status.textContent = `page ${cursors.length} · ${page.items.length} shown${next ? " · more on next pages" : ""}`;
      replace(message);
    } catch (error) {
      replace(message, errorBox(error));
    }
    prevButton.disabled = cursors.length <= 1;
    nextButton.disabled = next === null;
  };
  prevButton.addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    void load();
  });
  nextButton.addEventListener("click", () => {
    if (next === null) return;
    cursors.push(next);
    void load();
  });
  const el = h(
    "div",
    { class: "paged", "data-testid": options.testid },
    message,
    h(
      "table",
      null,
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          options.columns.map((c) => h("th", { class: c.class }, c.title)),
        ),
      ),
      body,
    ),
    h("div", { class: "pager" }, prevButton, status, nextButton),
  );
  void load();
  return {
    el,
    reload: load,
    reset: async () => {
      cursors.length = 1;
      await load();
    },
  };
}

export function errorBox(error: unknown, ...actions: Child[]): HTMLElement {
  const text =
    error instanceof ApiError ? error.describe() : error instanceof Error ? error.message : String(error);
  return h("div", { class: "alert error", role: "alert" }, h("span", null, text), ...actions);
}

export function okBox(...children: Child[]): HTMLElement {
  return h("div", { class: "alert ok", role: "status" }, ...children);
}

/** Runs `action` with its button disabled, showing success or the error in `out`. */
export async function busy(button: HTMLButtonElement, out: HTMLElement, action: () => Promise<Child>) {
  button.disabled = true;
  try {
    const result = await action();
    replace(out, result === undefined || result === null ? null : okBox(result));
  } catch (error) {
    replace(out, errorBox(error));
  } finally {
    button.disabled = false;
  }
}

/**
 * A card form whose submit runs `action` through busy(): `submit` (placed by the caller among
 * `content`) is disabled meanwhile, and the outcome shows in `out`, which ends the form.
 */
export function actionForm(
  options: { submit: HTMLButtonElement; out: HTMLElement; action: () => Promise<Child> },
  ...content: Child[]
): HTMLFormElement {
  const { submit, out, action } = options;
  const onsubmit = (event: Event) => {
    event.preventDefault();
    void busy(submit, out, action);
  };
  return h("form", { class: "card form", onsubmit }, ...content, out);
}

interface ClientRef {
  id: string;
  name: string;
}

const names = new Map<string, string>();

/** Learns the names of `ids` (admin only), so tables can show names instead of ids. */
export async function resolveClientNames(ids: string[]): Promise<void> {
  const missing = [...new Set(ids)].filter((id) => !names.has(id));
  if (missing.length === 0) return;
  const result = await api<{ items: ClientRef[] }>("GET", `/api/v1/console/clients?ids=${missing.join(",")}`);
  for (const c of result.items) names.set(c.id, c.name);
}

export const clientName = (id: string): string => names.get(id) ?? id.slice(0, 8);

export interface ClientPicker {
  el: HTMLElement;
  value(): string;
}

/**
 * Finds a client by name among any number of them: a search box and a select of the newest
 * matches. When there are more matches than shown it says so; nothing is cut off silently.
 */
export function clientPicker(options: {
  testid: string;
  label: string;
  /** Label of the "no client" option (a filter's "all clients"); without it a client must be chosen. */
  all?: string;
  selected?: string;
  onChange?: (id: string) => void;
}): ClientPicker {
  const search = h("input", {
    type: "search",
    placeholder: "search by name",
    "data-testid": `${options.testid}-search`,
    class: "picker-search",
  });
  const select = h("select", { "data-testid": options.testid });
  const note = h("span", { class: "muted small picker-note" });
  let selected = options.selected ?? "";
  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      const result = await api<{ items: ClientRef[]; more: boolean }>(
        "GET",
        `/api/v1/console/clients?limit=50&q=${encodeURIComponent(search.value.trim())}`,
      );
      if (mine !== generation) return;
      const items = [...result.items];
      if (selected !== "" && !items.some((c) => c.id === selected)) {
        await resolveClientNames([selected]);
        items.unshift({ id: selected, name: clientName(selected) });
      }
      for (const c of items) names.set(c.id, c.name);
      replace(
        select,
        options.all !== undefined ? h("option", { value: "" }, options.all) : null,
        items.map((c) => h("option", { value: c.id, selected: c.id === selected }, c.name)),
      );
      if (options.all === undefined && selected === "" && items[0]) selected = items[0].id;
      select.value = selected;
      note.textContent = result.more
        ? `newest ${result.items.length} matches shown: type more of the name`
        : `${result.items.length} match${result.items.length === 1 ? "" : "es"}`;
    } catch (error) {
      replace(note, errorBox(error));
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  select.addEventListener("change", () => {
    selected = select.value;
    options.onChange?.(selected);
  });
  void load();
  return {
    el: h(
      "label",
      { class: "field" },
      h("span", null, options.label),
      h("span", { class: "picker" }, search, select),
      note,
    ),
    value: () => select.value,
  };
}

export const shortId = (id: string) => h("code", { title: id }, id.slice(0, 8));

/** A filter drop-down: "" (labelled `any`) or one of `values`; `onChange` gets the choice. */
export function filterSelect(options: {
  testid: string;
  any: string;
  values: readonly string[];
  selected?: string;
  onChange(value: string): void;
}): HTMLSelectElement {
  const select: HTMLSelectElement = h(
    "select",
    { "data-testid": options.testid, onchange: () => options.onChange(select.value) },
    h("option", { value: "" }, options.any),
    options.values.map((v) => h("option", { value: v, selected: v === options.selected }, v)),
  );
  return select;
}

export function badge(text: string, kind = text.toLowerCase()): HTMLElement {
  return h("span", { class: `badge badge-${kind}` }, text);
}
