/**
 * The console's only way to the server: every call carries the credential from sessionStorage as a
 * bearer token. A 401 logs out (the credential is wrong or was revoked).
 */
import type { RulePolicyColumns } from "../../adapters/rule-source.ts";

const storageKey = "alerting.console.token";

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface ErrorBody {
  code: string;
  message: string;
  fields?: Record<string, string>;
  current_version?: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(`${status} ${body.code}: ${body.message}`);
  }

  describe(): string {
    const fields = Object.entries(this.body.fields ?? {})
      .map(([name, reason]) => `${name}: ${reason}`)
      .join("; ");
    return `${this.status} ${this.body.message}${fields ? ` (${fields})` : ""}`;
  }
}

let onUnauthorized: () => void = () => {};

export const session = {
  token: (): string | null => sessionStorage.getItem(storageKey),
  set(token: string) {
    sessionStorage.setItem(storageKey, token);
  },
  clear() {
    sessionStorage.removeItem(storageKey);
  },
  onUnauthorized(handler: () => void) {
    onUnauthorized = handler;
  },
};

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${session.token() ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as { error?: ErrorBody } | undefined)?.error ?? {
      code: "http_error",
      message: text.slice(0, 200) || response.statusText,
    };
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, error);
  }
  return parsed as T;
}

export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

/** Every page of a list, following next_cursor to the end (for selects; tables page instead). */
export async function listAll<T>(path: string, pagesMax = 200): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < pagesMax; i++) {
    const separator = path.includes("?") ? "&" : "?";
    const page: Page<T> = await api<Page<T>>(
      "GET",
      `${path}${separator}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    items.push(...page.items);
    cursor = page.next_cursor;
    if (cursor === null) return items;
  }
  throw new Error(`${path}: more than ${pagesMax} pages`);
}

export interface Client {
  id: string;
  name: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Rule extends RulePolicyColumns {
  id: string;
  client_id: string;
  severity: string;
  source: string;
  name: string;
  enabled: boolean;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Endpoint {
  id: string;
  rule_id: string;
  client_id: string;
  type: string;
  value: string;
  enabled: boolean;
  has_secret: boolean;
  version: number;
  created_at: string;
}

export interface Delivery {
  id: string;
  endpoint_id: string;
  channel: string;
  attempted_at: string;
  outcome: string;
  http_status: number | null;
  smtp_reply: string | null;
  latency_ms: number;
  error: string | null;
}

export interface Notification {
  id: string;
  client_id: string;
  alert_id: string;
  severity: string;
  source: string;
  name: string;
  context: Record<string, string>;
  rule_ids: string[];
  event_time: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  /** Status SILENCED: the client's silence that matched, or the rule whose mute window held. */
  silenced_by: string | null;
  muted_by_rule: string | null;
  episode: number;
  kind: string;
  /** "": the client's only route for the alert; else its grouping's (src/core/grouping.ts). */
  route: string;
  created_at: string;
  updated_at: string;
  group_key: string | null;
  group_send_id: string | null;
  deliveries?: Delivery[];
  /** Only on one notification: the group message it went out in. */
  group_send?: GroupSend | null;
}

export interface GroupSend {
  id: string;
  group_key: string;
  window_no: number;
  idempotency_key: string;
  labels: Record<string, string>;
  alerts: number;
  status: string;
  attempts: number;
  created_at: string;
  /** `carried`: the endpoint is one of the notification's own rules' (the API says so). */
  deliveries: (Delivery & { alerts: number; carried: boolean })[];
}

export interface Silence {
  id: string;
  client_id: string;
  matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[];
  state: "active" | "pending" | "expired";
  starts_at: string;
  ends_at: string;
  created_by: string;
  comment: string;
  updated_at: string;
}

/** A silence's matchers in Alertmanager's text form, as the API takes them. */
export function matchersText(matchers: Silence["matchers"]): string {
  const operator = (m: Silence["matchers"][number]) =>
    m.isRegex ? (m.isEqual ? "=~" : "!~") : m.isEqual ? "=" : "!=";
  return `{${matchers.map((m) => `${m.name}${operator(m)}${JSON.stringify(m.value)}`).join(", ")}}`;
}

export interface SessionInfo {
  kind: "admin" | "client";
  client_id: string | null;
  client_name: string | null;
}
