/**
 * Reads a JSON request body for every HTTP surface: the content type must be JSON (415), the body
 * at most `limitBytes` both as declared and as actually sent (413), and valid UTF-8 JSON (400).
 * `fail` builds the surface's own error type from (status, code, message).
 */
export async function readJsonBody(
  request: Request,
  limitBytes: number,
  fail: (status: number, code: string, message: string) => Error,
): Promise<unknown> {
  const mediaType = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json")
    throw fail(415, "unsupported_media_type", "the body must be application/json");
  const tooLarge = () => fail(413, "payload_too_large", `the body must be at most ${limitBytes} bytes`);
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
    throw fail(400, "invalid_json", "the body is not valid UTF-8 JSON");
  }
}
