/**
 * The HTTP transport shared by the webhook and Slack channels: one POST, guarded, bounded, classified.
 *
 * - The SSRF guard runs before the first request and before every redirect hop.
 * - Redirects: only 307/308 are followed (they keep POST and its body; 301/302/303 would turn it into
 *   a GET), at most `redirectsMax` hops; anything else 3xx is a PERMANENT "redirect not followed".
 * - One timeout covers the whole delivery: DNS, every hop, and reading the response.
 * - Response bodies are always read (capped) so Bun's fetch can return the connection to its
 *   keep-alive pool; the start of an error body goes into the error text.
 */
import { classifyHttpStatus, classifyNetworkError } from "../core/retry.ts";
import type { SsrfGuard } from "./ssrf.ts";
import { type DeliveryResult, toDeliveryResult } from "./types.ts";

export interface HttpTransportOptions {
  guard: SsrfGuard;
  timeoutMs: number;
  redirectsMax: number;
}

const responseBytesMax = 64 * 1024;
const errorSnippetCharsMax = 200;

export class HttpTransport {
  constructor(private readonly options: HttpTransportOptions) {}

  async post(url: string, body: string, headers: Record<string, string>): Promise<DeliveryResult> {
    const startedMs = performance.now();
    const elapsedMs = () => Math.round(performance.now() - startedMs);
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return toDeliveryResult({ outcome: "PERMANENT", reason: "invalid URL" }, elapsedMs());
    }
    try {
      for (let hop = 0; ; hop++) {
        const verdict = await abortable(this.options.guard.check(target), signal);
        if (!verdict.allowed) {
          return toDeliveryResult({ outcome: "PERMANENT", reason: verdict.reason }, elapsedMs());
        }
        const response = await fetch(target, { method: "POST", body, headers, redirect: "manual", signal });
        const location = response.headers.get("location");
        if (
          (response.status === 307 || response.status === 308) &&
          location !== null &&
          hop < this.options.redirectsMax
        ) {
          await readCappedText(response);
          target = new URL(location, target);
          continue;
        }
        const decision = classifyHttpStatus(response.status, response.headers);
        const text = await readCappedText(response);
        const httpStatus = response.status;
        if (decision.outcome === "SUCCESS") return toDeliveryResult(decision, elapsedMs(), { httpStatus });
        const snippet = text.replace(/\s+/g, " ").trim().slice(0, errorSnippetCharsMax);
        const error = snippet === "" ? decision.reason : `${decision.reason}: ${snippet}`;
        return toDeliveryResult(decision, elapsedMs(), { httpStatus, error });
      }
    } catch (error) {
      return toDeliveryResult(classifyNetworkError(error), elapsedMs());
    }
  }
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
