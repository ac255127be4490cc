/**
 * The HTTP transport shared by the webhook and Slack channels: one POST, guarded, bounded, classified.
 *
 * - The SSRF guard runs before the first request and before every redirect hop, and the hop connects
 *   to the addresses it checked, never to a fresh resolution of the name (DNS rebinding): the URL
 *   carries the checked address, the Host header the original host and, for https, the TLS server
 *   name (SNI and certificate verification) the original name. Http1Client pools keep-alive
 *   connections per (address, port, TLS name), so a connection verified for one name never serves
 *   another; it measured 1.5-3.7x less CPU per POST than Bun's fetch (`./dev bench webhook-client`).
 * - Redirects: only 307/308 are followed (they keep POST and its body; 301/302/303 would turn it into
 *   a GET), at most `redirectsMax` hops; anything else 3xx is a PERMANENT "redirect not followed".
 * - One timeout covers the whole delivery: DNS, every hop, and reading the response.
 * - Response bodies are read up to 64 KiB, so the connection can go back to the pool. A refusal is recorded as its status and a fixed reason ("HTTP 500"), never the
 *   receiver's body: deliveries.error is shown to the tenant, and the receiver may be an allow-listed
 *   internal service. The start of the body is logged at debug level for the operator.
 */
import { classifyHttpStatus, classifyNetworkError } from "../core/retry.ts";
import type { Logger } from "../runtime/log.ts";
import { Http1Client, type Http1Response } from "./http1-client.ts";
import type { SsrfGuard } from "./ssrf.ts";
import { type DeliveryResult, toDeliveryResult } from "./types.ts";

export interface HttpTransportOptions {
  guard: SsrfGuard;
  timeoutMs: number;
  redirectsMax: number;
  /** Where the start of a refusal's body goes, at debug level. */
  logger?: Logger;
}

const responseBytesMax = 64 * 1024;
const logSnippetCharsMax = 200;

/** Parsed endpoint URLs kept at most (a sender posts to the same few URLs thousands of times a second). */
const targetsCachedMax = 4096;

export class HttpTransport {
  /** Endpoint URL -> parsed URL (never mutated), or null when it does not parse. */
  private readonly targets = new Map<string, URL | null>();
  private readonly client: Http1Client;

  constructor(private readonly options: HttpTransportOptions) {
    const { timeoutMs } = options;
    this.client = new Http1Client({
      connectTimeoutMs: timeoutMs,
      responseTimeoutMs: timeoutMs,
      bodyBytesMax: responseBytesMax,
    });
  }

  async post(url: string, body: string, headers: Record<string, string>): Promise<DeliveryResult> {
    const startedMs = performance.now();
    const elapsedMs = () => Math.round(performance.now() - startedMs);
    const deadlineMs = startedMs + this.options.timeoutMs;
    let target = this.parseTarget(url);
    if (target === null) {
      return toDeliveryResult({ outcome: "PERMANENT", reason: "invalid URL" }, elapsedMs());
    }
    try {
      for (let hop = 0; ; hop++) {
        const { guard } = this.options;
        const verdict =
          guard.recentVerdict(target) ??
          (await abortable(guard.check(target), AbortSignal.timeout(deadlineMs - performance.now())));
        if (!verdict.allowed) {
          return toDeliveryResult({ outcome: "PERMANENT", reason: verdict.reason }, elapsedMs());
        }
        const response = await requestPinned(
          this.client,
          target,
          verdict.addresses,
          body,
          headers,
          deadlineMs,
        );
        const location =
          response.status === 307 || response.status === 308 ? response.headers.get("location") : null;
        if (location !== null && hop < this.options.redirectsMax) {
          target = new URL(location, target);
          continue;
        }
        const decision = classifyHttpStatus(response.status, response.headers);
        const httpStatus = response.status;
        if (decision.outcome === "SUCCESS") return toDeliveryResult(decision, elapsedMs(), { httpStatus });
        this.options.logger?.debug("receiver refused a delivery", {
          host: target.host,
          httpStatus,
          body: new TextDecoder().decode(response.body).slice(0, logSnippetCharsMax).replace(/\s+/g, " "),
        });
        return toDeliveryResult(decision, elapsedMs(), { httpStatus });
      }
    } catch (error) {
      return toDeliveryResult(classifyNetworkError(error), elapsedMs());
    }
  }

  private parseTarget(url: string): URL | null {
    let target = this.targets.get(url);
    if (target === undefined) {
      try {
        target = new URL(url);
      } catch {
        target = null;
      }
      if (this.targets.size >= targetsCachedMax) this.targets.clear();
      this.targets.set(url, target);
    }
    return target;
  }
}

/**
 * Tries the checked addresses in order, as fetch does with the addresses of a name, moving on only
 * when no connection could be opened, so nothing was sent. The client connects to the address and
 * sends the URL's host as Host and, for https, as the TLS server name (SNI and certificate check).
 */
function requestPinned(
  client: Http1Client,
  target: URL,
  addresses: string[],
  body: string,
  headers: Record<string, string>,
  deadlineMs: number,
): Promise<Http1Response> {
  const requestFrom = (address: string) =>
    client.request({ url: target, address, body, headers, timeoutMs: deadlineMs - performance.now() });
  // One address (the common case): its failure is the result either way, so no wrapper is needed.
  if (addresses.length === 1) return requestFrom(addresses[0] as string);
  return fetchInTurn(addresses, requestFrom);
}

async function fetchInTurn(
  addresses: string[],
  fetchFrom: (address: string) => Promise<Http1Response>,
): Promise<Http1Response> {
  let notOpened: unknown;
  for (const address of addresses) {
    try {
      return await fetchFrom(address);
    } catch (error) {
      if (!connectionNotOpened.has((error as { code?: string } | null)?.code ?? "")) throw error;
      notOpened = error;
    }
  }
  throw notOpened;
}

const connectionNotOpened = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"]);

/** DNS lookups take no signal; racing keeps them inside the delivery's timeout. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
