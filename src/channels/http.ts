/**
 * The HTTP transport shared by the webhook and Slack channels: one POST, guarded, bounded, classified.
 *
 * - The SSRF guard runs before the first request and before every redirect hop, and the hop connects
 *   to the addresses it checked, never to a fresh resolution of the name (DNS rebinding): the URL
 *   carries the checked address, the Host header the original host and, for https, the TLS server
 *   name (SNI and certificate verification) the original name. Bun pools connections per address and
 *   TLS options, so keep-alive still works, and a connection verified for one name never serves another.
 * - Redirects: only 307/308 are followed (they keep POST and its body; 301/302/303 would turn it into
 *   a GET), at most `redirectsMax` hops; anything else 3xx is a PERMANENT "redirect not followed".
 * - One timeout covers the whole delivery: DNS, every hop, and reading the response.
 * - Response bodies are always read (capped) so Bun's fetch can return the connection to its
 *   keep-alive pool. A refusal is recorded as its status and a fixed reason ("HTTP 500"), never the
 *   receiver's body: deliveries.error is shown to the tenant, and the receiver may be an allow-listed
 *   internal service. The start of the body is logged at debug level for the operator.
 */
import { isIP, isIPv6 } from "node:net";
import { classifyHttpStatus, classifyNetworkError } from "../core/retry.ts";
import type { Logger } from "../runtime/log.ts";
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

  constructor(private readonly options: HttpTransportOptions) {}

  async post(url: string, body: string, headers: Record<string, string>): Promise<DeliveryResult> {
    const startedMs = performance.now();
    const elapsedMs = () => Math.round(performance.now() - startedMs);
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    let target = this.parseTarget(url);
    if (target === null) {
      return toDeliveryResult({ outcome: "PERMANENT", reason: "invalid URL" }, elapsedMs());
    }
    try {
      for (let hop = 0; ; hop++) {
        const { guard } = this.options;
        const verdict = guard.recentVerdict(target) ?? (await abortable(guard.check(target), signal));
        if (!verdict.allowed) {
          return toDeliveryResult({ outcome: "PERMANENT", reason: verdict.reason }, elapsedMs());
        }
        const response = await fetchPinned(target, verdict.addresses, body, headers, signal);
        const location =
          response.status === 307 || response.status === 308 ? response.headers.get("location") : null;
        if (location !== null && hop < this.options.redirectsMax) {
          await readCappedText(response);
          target = new URL(location, target);
          continue;
        }
        const decision = classifyHttpStatus(response.status, response.headers);
        const httpStatus = response.status;
        if (decision.outcome === "SUCCESS") {
          await discardBody(response);
          return toDeliveryResult(decision, elapsedMs(), { httpStatus });
        }
        const text = await readCappedText(response);
        this.options.logger?.debug("receiver refused a delivery", {
          host: target.host,
          httpStatus,
          body: text.slice(0, logSnippetCharsMax).replace(/\s+/g, " "),
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

/** The target's URL with the checked address in place of the host name. */
function pinnedUrl(target: URL, address: string): URL {
  const url = new URL(target);
  url.hostname = isIPv6(address) ? `[${address}]` : address;
  // The setter keeps the old host when it cannot parse the new one (an IPv6 zone id): never send that.
  if (!isAddress(url.hostname)) throw new Error(`cannot connect to address ${address}`);
  return url;
}

/**
 * Tries the checked addresses in order, as fetch does with the addresses of a name, moving on only
 * when no connection could be opened, so nothing was sent.
 */
function fetchPinned(
  target: URL,
  addresses: string[],
  body: string,
  headersWithoutHost: Record<string, string>,
  signal: AbortSignal,
): Promise<Response> {
  const headers = { ...headersWithoutHost, host: target.host };
  // Certificate and SNI checks stay on the name the tenant configured.
  const tls =
    target.protocol === "https:" && !isAddress(target.hostname) ? { serverName: target.hostname } : undefined;
  const fetchFrom = (address: string) =>
    fetch(pinnedUrl(target, address), { method: "POST", body, headers, redirect: "manual", signal, tls });
  // One address (the common case): its failure is the result either way, so no wrapper is needed.
  if (addresses.length === 1) return fetchFrom(addresses[0] as string);
  return fetchInTurn(addresses, fetchFrom);
}

async function fetchInTurn(
  addresses: string[],
  fetchFrom: (address: string) => Promise<Response>,
): Promise<Response> {
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

/** URL.hostname keeps the brackets of an IPv6 literal. */
function isAddress(hostname: string): boolean {
  return isIP(hostname.replace(/^\[(.*)\]$/, "$1")) !== 0;
}

/** DNS lookups take no signal; racing keeps them inside the delivery's timeout. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Reads and drops a body (so the connection goes back to the pool), natively when it is small. */
function discardBody(response: Response): Promise<unknown> {
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  return length <= responseBytesMax ? response.arrayBuffer() : readCappedText(response);
}

async function readCappedText(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < responseBytesMax) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks).toString("utf8");
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel(); // the rest is not worth the bandwidth; the connection is dropped instead
  return Buffer.concat(chunks).subarray(0, responseBytesMax).toString("utf8");
}
