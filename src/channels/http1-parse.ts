/**
 * The pure half of the HTTP/1.1 client (http1-client.ts): the request head it writes, the response
 * head it reads, and the chunked body decoder. No I/O, so every malformed case is a unit test.
 *
 * The reader is strict where leniency would let a response be read two ways (request smuggling,
 * response splitting): one status line form, token header names, no obs-fold, no control characters,
 * one agreed Content-Length. It is lenient only where RFC 9112 allows: a bare LF ends a line.
 * Everything is bounded: head bytes, chunk-size lines, trailers.
 */

/** The closed list of ways a response can be unreadable; every one means the connection is dropped. */
export const http1ErrorCodes = [
  "MALFORMED_STATUS_LINE",
  "MALFORMED_HEADER",
  "HEADERS_TOO_LARGE",
  "BAD_CONTENT_LENGTH",
  "BAD_CHUNK",
  "EXCESS_DATA",
  "TRUNCATED_BODY",
  "CONNECTION_CLOSED",
  "UNEXPECTED_STATUS",
  "TLS_HANDSHAKE_FAILED",
  "CONNECT_TIMEOUT",
  "RESPONSE_TIMEOUT",
  "QUEUE_FULL",
] as const;
export type Http1ErrorCode = (typeof http1ErrorCodes)[number];

/** An operating error of the client: a response it cannot read or a request it cannot complete. */
export class Http1Error extends Error {
  override readonly name: string = "Http1Error";

  constructor(
    readonly code: Http1ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`HTTP/1.1 ${code}: ${message}`, options);
  }
}

/** Named like the DOMException of AbortSignal.timeout(), so callers treat both timeouts alike. */
export class Http1TimeoutError extends Http1Error {
  override readonly name = "TimeoutError";
}

/** How the response body ends (RFC 9112 §6.3). */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "until-close" };

export interface ResponseHead {
  status: number;
  headers: Headers;
  framing: BodyFraming;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
}

export type HeadParse = { complete: false } | { complete: true; head: ResponseHead; headBytes: number };

const LF = 0x0a;
const CR = 0x0d;
const httpPrefix = "HTTP/1.";

const statusLinePattern = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const fieldValuePattern = /^[\t\x20-\x7e\x80-\xff]*$/;
const requestHeaderValuePattern = /^[\t\x20-\x7e]*$/;

/**
 * Reads one response head from the start of `bytes`: incomplete while the blank line has not
 * arrived, or throws an Http1Error. `noBody` is set for answers to HEAD, whose headers describe a
 * body that is never sent.
 */
export function parseResponseHead(bytes: Uint8Array, headerBytesMax: number, noBody = false): HeadParse {
  // Not HTTP at all: say so at once rather than after headerBytesMax bytes or a timeout.
  const prefixBytes = Math.min(bytes.length, httpPrefix.length);
  for (let i = 0; i < prefixBytes; i++) {
    if (bytes[i] !== httpPrefix.charCodeAt(i)) {
      throw new Http1Error("MALFORMED_STATUS_LINE", `response does not start with ${httpPrefix}`);
    }
  }
  const headBytes = findHeadEnd(bytes, Math.min(bytes.length, headerBytesMax));
  if (headBytes < 0) {
    if (bytes.length >= headerBytesMax) {
      throw new Http1Error("HEADERS_TOO_LARGE", `response head exceeds ${headerBytesMax} bytes`);
    }
    return { complete: false };
  }
  const text = latin1(bytes, headBytes);
  let lineEnd = text.indexOf("\n");
  const statusLine = withoutCr(text.slice(0, lineEnd));
  const status = statusLinePattern.exec(statusLine);
  if (status === null) throw new Http1Error("MALFORMED_STATUS_LINE", `status line ${quote(statusLine)}`);
  const headers = new Headers();
  // The fields that frame the message, each copy joined with "," as Headers would.
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let connection = "";
  for (;;) {
    const lineStart = lineEnd + 1;
    lineEnd = text.indexOf("\n", lineStart);
    const line = withoutCr(text.slice(lineStart, lineEnd));
    if (line === "") break; // the blank line that ends the head
    // No regex captures here: this runs for every header of every response.
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    const value = trimSpaces(line, colon + 1);
    if (colon <= 0 || !tokenPattern.test(name) || !fieldValuePattern.test(value)) {
      throw new Http1Error("MALFORMED_HEADER", `header line ${quote(line)}`);
    }
    headers.append(name, value);
    if (name === "content-length") contentLength = joinField(contentLength, value);
    else if (name === "transfer-encoding") transferEncoding = joinField(transferEncoding, value);
    else if (name === "connection") connection = joinField(connection, value.toLowerCase());
  }
  const code = Number(status[2]);
  const framing = bodyFraming(code, contentLength, transferEncoding, noBody);
  // A body that ends at close, or one framed both ways (a smuggling attempt), leaves nothing to reuse.
  const keepAlive =
    status[1] === "1" &&
    !/(?:^|,)\s*close\s*(?:,|$)/.test(connection) &&
    framing.kind !== "until-close" &&
    !(framing.kind === "chunked" && contentLength !== undefined);
  return { complete: true, head: { status: code, headers, framing, keepAlive }, headBytes };
}

/** `text` from `start` without leading and trailing spaces and tabs (not String.trim's Unicode set). */
function trimSpaces(text: string, start: number): string {
  let end = text.length;
  while (start < end && isSpaceOrTab(text.charCodeAt(start))) start++;
  while (end > start && isSpaceOrTab(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function isSpaceOrTab(unit: number): boolean {
  return unit === 0x20 || unit === 0x09;
}

function joinField(joined: string | undefined, value: string): string {
  return joined === undefined || joined === "" ? value : `${joined},${value}`;
}

function bodyFraming(
  status: number,
  contentLength: string | undefined,
  transferEncoding: string | undefined,
  noBody: boolean,
): BodyFraming {
  if (noBody || status < 200 || status === 204 || status === 304) return { kind: "none" };
  if (transferEncoding !== undefined) {
    // Only a final "chunked" frames the body; any other last coding means it runs to the close.
    const lastCoding = transferEncoding.slice(transferEncoding.lastIndexOf(",") + 1);
    return lastCoding.trim().toLowerCase() === "chunked" ? { kind: "chunked" } : { kind: "until-close" };
  }
  if (contentLength === undefined) return { kind: "until-close" };
  // Repeated fields, or one with a list: every copy must state the same length.
  const values = contentLength.includes(",")
    ? contentLength.split(",").map((v) => v.trim())
    : [contentLength];
  const [value = ""] = values;
  if (values.some((other) => other !== value) || !/^\d{1,15}$/.test(value)) {
    throw new Http1Error("BAD_CONTENT_LENGTH", `content-length ${quote(contentLength)}`);
  }
  const length = Number(value);
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}

/** Offset just past the blank line that ends the head, or -1 if it is not within the first `limit` bytes. */
function findHeadEnd(bytes: Uint8Array, limit: number): number {
  for (let i = bytes.indexOf(LF); i >= 0 && i < limit; i = bytes.indexOf(LF, i + 1)) {
    if (bytes[i + 1] === LF && i + 2 <= limit) return i + 2;
    if (bytes[i + 1] === CR && bytes[i + 2] === LF && i + 3 <= limit) return i + 3;
  }
  return -1;
}

function latin1(bytes: Uint8Array, end: number): string {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return buffer.toString("latin1", 0, end);
}

/** Lines end in CRLF or LF; a CR anywhere else is refused by the patterns. */
function withoutCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** A short, printable rendering of bad input for an error message. */
function quote(text: string): string {
  const shown = JSON.stringify(text.slice(0, 80));
  return text.length > 80 ? `${shown}…` : shown;
}

/**
 * The request line and headers, ending with the blank line; no content-length when there is no body.
 * `host` and the framing headers are the client's to set; header names and values come from our code
 * (not from tenants), so a bad one is a programmer error.
 */
export function requestHead(
  method: string,
  pathAndQuery: string,
  host: string,
  headers: Record<string, string>,
  contentLength: number | undefined,
): string {
  if (!tokenPattern.test(method)) throw new TypeError(`invalid HTTP method ${quote(method)}`);
  // URL serialisation percent-encodes spaces and drops CR/LF, so this only catches hand-made targets.
  if (!/^\/[\x21-\x7e]*$/.test(pathAndQuery))
    throw new TypeError(`invalid request target ${quote(pathAndQuery)}`);
  let head = `${method} ${pathAndQuery} HTTP/1.1\r\nhost: ${host}\r\n`;
  if (contentLength !== undefined) head += `content-length: ${contentLength}\r\n`;
  for (const name in headers) {
    const value = headers[name] as string;
    if (!tokenPattern.test(name) || !requestHeaderValuePattern.test(value)) {
      throw new TypeError(`invalid request header ${quote(name)}: ${quote(value)}`);
    }
    const lower = name.toLowerCase();
    if (lower === "host" || lower === "content-length" || lower === "transfer-encoding") {
      throw new TypeError(`request header ${name} is set by the client`);
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

export interface ChunkedLimits {
  /** A chunk-size line (size and extensions) longer than this is refused. */
  chunkLineBytesMax: number;
  /** All trailer fields together. */
  trailerBytesMax: number;
}

export const defaultChunkedLimits: ChunkedLimits = { chunkLineBytesMax: 1024, trailerBytesMax: 8192 };

/** 13 hex digits are 2^52: past that a size cannot be a safe integer, let alone a real chunk. */
const chunkSizeDigitsMax = 13;

type ChunkedState = "size" | "extension" | "size-lf" | "data" | "data-cr" | "data-lf" | "trailer" | "done";

/**
 * Decodes a chunked body fed in pieces as they arrive (RFC 9112 §7.1): data goes to `onData`,
 * extensions and trailers are skipped (within their bounds).
 */
export class ChunkedDecoder {
  private state: ChunkedState = "size";
  private size = 0;
  private sizeDigits = 0;
  private lineBytes = 0;
  private trailerBytes = 0;
  /** Bytes on the current trailer line; an empty line ends the trailer section. */
  private trailerLineBytes = 0;

  constructor(private readonly limits: ChunkedLimits = defaultChunkedLimits) {}

  get done(): boolean {
    return this.state === "done";
  }

  /**
   * Feeds `bytes` from `start`; returns the offset just past the body's end, or -1 when all of
   * `bytes` was consumed and more is needed. Throws Http1Error BAD_CHUNK.
   */
  push(bytes: Uint8Array, start: number, onData: (data: Uint8Array) => void): number {
    let i = start;
    while (i < bytes.length) {
      const byte = bytes[i] as number;
      switch (this.state) {
        case "size": {
          const digit = hexValue(byte);
          if (digit >= 0) {
            if (++this.sizeDigits > chunkSizeDigitsMax) this.fail("chunk size too large");
            this.size = this.size * 16 + digit;
            this.countLineByte();
          } else if (this.sizeDigits === 0) {
            this.fail(`chunk size expected, got ${describeByte(byte)}`);
          } else if (byte === 0x3b || byte === 0x20 || byte === 0x09) {
            this.state = "extension";
            this.countLineByte();
          } else {
            this.endSizeLine(byte);
          }
          i++;
          break;
        }
        case "extension":
          if (byte === CR || byte === LF) this.endSizeLine(byte);
          else if (byte < 0x20 && byte !== 0x09)
            this.fail(`control byte ${describeByte(byte)} in chunk extension`);
          else this.countLineByte();
          i++;
          break;
        case "size-lf":
          if (byte !== LF) this.fail(`LF expected after chunk size, got ${describeByte(byte)}`);
          this.startChunk();
          i++;
          break;
        case "data": {
          const end = Math.min(bytes.length, i + this.size);
          onData(bytes.subarray(i, end));
          this.size -= end - i;
          i = end;
          if (this.size === 0) this.state = "data-cr";
          break;
        }
        case "data-cr":
          if (byte === CR) this.state = "data-lf";
          else if (byte === LF) this.state = "size";
          else this.fail(`CRLF expected after chunk data, got ${describeByte(byte)}`);
          i++;
          break;
        case "data-lf":
          if (byte !== LF) this.fail(`LF expected after chunk data, got ${describeByte(byte)}`);
          this.state = "size";
          i++;
          break;
        case "trailer":
          i++;
          if (++this.trailerBytes > this.limits.trailerBytesMax) {
            this.fail(`trailer exceeds ${this.limits.trailerBytesMax} bytes`);
          }
          if (byte === LF) {
            if (this.trailerLineBytes === 0) {
              this.state = "done";
              return i;
            }
            this.trailerLineBytes = 0;
          } else if (byte !== CR) {
            this.trailerLineBytes++;
          }
          break;
        case "done":
          return i;
      }
    }
    return -1;
  }

  private countLineByte(): void {
    if (++this.lineBytes > this.limits.chunkLineBytesMax) {
      this.fail(`chunk size line exceeds ${this.limits.chunkLineBytesMax} bytes`);
    }
  }

  private endSizeLine(byte: number): void {
    if (byte === CR) this.state = "size-lf";
    else if (byte === LF) this.startChunk();
    else this.fail(`unexpected ${describeByte(byte)} after chunk size`);
  }

  private startChunk(): void {
    this.state = this.size === 0 ? "trailer" : "data";
    this.sizeDigits = 0;
    this.lineBytes = 0;
  }

  private fail(reason: string): never {
    throw new Http1Error("BAD_CHUNK", reason);
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

function describeByte(byte: number): string {
  return byte >= 0x21 && byte <= 0x7e ? `"${String.fromCharCode(byte)}"` : `byte 0x${byte.toString(16)}`;
}
