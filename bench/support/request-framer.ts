/**
 * Splits the bytes of one HTTP/1.1 connection into requests, for the benches' raw Bun.listen sinks
 * (raw-sink.ts, pipeline/sink.ts): each request is a head up to the blank line and `content-length`
 * bytes of body; nothing else in the head is parsed. Bodies framed otherwise (chunked) are a bench
 * bug and throw.
 */
/** What the sinks answer to every request: 200 with keep-alive (HTTP/1.1's default). */
export const okAnswer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

const headEnd = Buffer.from("\r\n\r\n");
const contentLengthPattern = /\ncontent-length:[ \t]*(\d+)/i;
const headBytesMax = 64 * 1024;
const keptBodyBytesMax = 1024 * 1024;

export class RequestFramer {
  /** Bytes of an incomplete request carried over to the next chunk. */
  #pending: Buffer | undefined;
  /** Body bytes of the current request still to skip (bodies not kept only). */
  #bodyRemaining = 0;

  /** `keepBodies`: hand each request's body to `push`'s callback; otherwise bodies are skipped unread. */
  constructor(readonly keepBodies: boolean) {}

  /** Takes one chunk; calls `onRequest` per request it completes (with the body if kept) and returns their count. */
  push(chunk: Buffer, onRequest?: (body: Buffer) => void): number {
    const bytes = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = undefined;
    let offset = 0;
    let completed = 0;
    while (offset < bytes.length) {
      if (this.#bodyRemaining > 0) {
        const skipped = Math.min(this.#bodyRemaining, bytes.length - offset);
        this.#bodyRemaining -= skipped;
        offset += skipped;
        if (this.#bodyRemaining === 0) completed++;
        continue;
      }
      const end = bytes.indexOf(headEnd, offset);
      if (end < 0) {
        if (bytes.length - offset > headBytesMax) throw new Error("request head over 64 KiB");
        this.#pending = bytes.subarray(offset);
        break;
      }
      const head = bytes.toString("latin1", offset, end + 2);
      if (/\ntransfer-encoding:/i.test(head)) throw new Error("chunked request bodies are not supported");
      const bodyBytes = Number(contentLengthPattern.exec(head)?.[1] ?? 0);
      const bodyStart = end + headEnd.length;
      if (this.keepBodies) {
        if (bodyBytes > keptBodyBytesMax) throw new Error(`request body of ${bodyBytes} bytes is over 1 MiB`);
        if (bytes.length - bodyStart < bodyBytes) {
          this.#pending = bytes.subarray(offset); // the whole request again, once its body is in
          break;
        }
        onRequest?.(bytes.subarray(bodyStart, bodyStart + bodyBytes));
        completed++;
        offset = bodyStart + bodyBytes;
        continue;
      }
      const available = Math.min(bodyBytes, bytes.length - bodyStart);
      offset = bodyStart + available;
      this.#bodyRemaining = bodyBytes - available;
      if (this.#bodyRemaining === 0) completed++;
    }
    return completed;
  }
}
