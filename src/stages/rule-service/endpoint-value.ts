import type { SsrfGuard } from "../../channels/ssrf.ts";
import { badRequest } from "./http.ts";

export const endpointTypes = ["email", "slack", "webhook"] as const;
export type EndpointType = (typeof endpointTypes)[number];

const emailPattern = /^[^\s@,;<>()"'`\\]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/i;
const emailsMax = 50;

/**
 * Checks `value` against its type; returns the form to store (email lists trimmed, comma-joined).
 * A URL whose host is an internal address literal or localhost is refused by `guard`, the sender's
 * SSRF guard with the same allow-list, so the tenant hears of it now rather than at delivery; host
 * names are left to delivery, which resolves them and checks again on every hop.
 */
export function normalizeEndpointValue(type: EndpointType, value: string, guard: SsrfGuard): string {
  if (type === "email") {
    const addresses = value.split(",").map((a) => a.trim());
    const bad = addresses.find((a) => !emailPattern.test(a));
    if (bad !== undefined) {
      throw badRequest("invalid endpoint value", {
        value: `"${bad.slice(0, 100)}" is not an email address (use a comma-separated list)`,
      });
    }
    if (addresses.length > emailsMax) {
      throw badRequest("invalid endpoint value", { value: `at most ${emailsMax} addresses` });
    }
    return addresses.join(",");
  }
  const url = URL.parse(value);
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || !url.hostname || /\s/.test(value)) {
    throw badRequest("invalid endpoint value", { value: `must be an http(s) URL for a ${type} endpoint` });
  }
  const verdict = guard.decideWithoutLookup(url);
  if (verdict?.allowed === false) throw badRequest("invalid endpoint value", { value: verdict.reason });
  return value;
}

export function assertSecretAllowed(type: EndpointType, secret: string | null | undefined): void {
  if (typeof secret === "string" && type !== "webhook") {
    throw badRequest("invalid fields", { secret: "only webhook endpoints take a secret" });
  }
}
