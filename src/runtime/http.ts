/**
 * What every HTTP surface (the rule service and its console, the alert-producer's ingest) shares:
 * one error type answered as `{error: {code, message, fields, ...details}}`, the JSON body reader,
 * and the 429 of the request rate limits, so all of them fail alike.
 */
import type { Server } from "bun";
import { retryAfterSeconds } from "../core/rate-limit.ts";

/** Field name -> why it was rejected. */
export type FieldErrors = Record<string, string>;

/** The part of Bun's server a handler uses: who is on the other end. */
export type Peer = Pick<Server<undefined>, "requestIP">;

/** An error answered with `status`, `headers` and the JSON error object. */
export class HttpError extends Error {
  readonly fields?: FieldErrors;
  /** Extra members of the error object, e.g. `current_version` on a version conflict. */
  readonly details?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    extra: { fields?: FieldErrors; details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.fields = extra.fields;
    this.details = extra.details;
    this.headers = extra.headers;
  }
}

export function rateLimited(retryAfterMs: number): HttpError {
  const seconds = retryAfterSeconds(retryAfterMs);
  return new HttpError(429, "rate_limited", `too many requests, retry in ${seconds} s`, {
    headers: { "retry-after": String(seconds) },
  });
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Response {
  return Response.json(body, { status, headers });
}

/**
 * Reads a JSON request body: the content type must be JSON (415), the body at most `limitBytes` both
 * as declared and as actually sent (413), and valid UTF-8 JSON (400).
 */
export async function readJsonBody(request: Request, limitBytes: number): Promise<unknown> {
  const mediaType = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json")
    throw new HttpError(415, "unsupported_media_type", "the body must be application/json");
  const tooLarge = () =>
    new HttpError(413, "payload_too_large", `the body must be at most ${limitBytes} bytes`);
  if (Number(request.headers.get("content-length") ?? 0) > limitBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let sizeBytes = 0;
  if (request.body) {
    for await (const chunk of request.body) {
      sizeBytes += chunk.byteLength;
      if (sizeBytes > limitBytes) throw tooLarge();
      chunks.push(chunk);
    }
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks)));
  } catch {
    // Also what a stack overflow on absurdly deep nesting becomes: bad input, not a server error.
    throw new HttpError(400, "invalid_json", "the body is not valid UTF-8 JSON");
  }
}
