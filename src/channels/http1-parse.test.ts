// The HTTP/1.1 reader and writer on bytes only; the client's behaviour on sockets is in
// test/channels/http1-client.test.ts.
import { describe, expect, test } from "bun:test";
import { ChunkedDecoder, Http1Error, parseResponseHead, requestHead } from "./http1-parse.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const headerBytesMax = 1024;

function parseHead(text: string, noBody = false) {
  const parsed = parseResponseHead(bytes(text), headerBytesMax, noBody);
  if (!parsed.complete) throw new Error("head incomplete");
  return parsed;
}

function codeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    if (error instanceof Http1Error) return error.code;
    throw error;
  }
  throw new Error("no error");
}

describe("parseResponseHead", () => {
  test("reads status, headers and the head's length", () => {
    const text =
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno";
    const { head, headBytes } = parseHead(text);
    expect(head.status).toBe(429);
    expect(head.headers.get("retry-after")).toBe("7");
    expect(head.headers.get("content-type")).toBe("text/plain");
    expect(head.framing).toEqual({ kind: "length", length: 2 });
    expect(head.keepAlive).toBe(true);
    expect(headBytes).toBe(text.length - 2);
  });

  test("accepts bare LF line ends, no reason phrase and values with surrounding whitespace", () => {
    const { head } = parseHead("HTTP/1.1 200\nX-A: \t spaced \t\ncontent-length: 0\n\n");
    expect(head.status).toBe(200);
    expect(head.headers.get("x-a")).toBe("spaced");
    expect(head.framing).toEqual({ kind: "none" });
  });

  test("is incomplete until the blank line arrives", () => {
    for (const partial of ["", "HTT", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r"]) {
      expect(parseResponseHead(bytes(partial), headerBytesMax).complete).toBe(false);
    }
  });

  test("repeated headers are joined, and repeated equal content-lengths accepted", () => {
    const { head } = parseHead(
      "HTTP/1.1 200 OK\r\nVary: a\r\nVary: b\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
    );
    expect(head.headers.get("vary")).toBe("a, b");
    expect(head.framing).toEqual({ kind: "length", length: 3 });
  });

  test.each([
    ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", { kind: "chunked" }, true],
    ["HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n", { kind: "chunked" }, true],
    ["HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", { kind: "until-close" }, false],
    ["HTTP/1.1 200 OK\r\n\r\n", { kind: "until-close" }, false],
    ["HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n", { kind: "none" }, true],
    ["HTTP/1.1 304 Not Modified\r\n\r\n", { kind: "none" }, true],
    ["HTTP/1.1 100 Continue\r\n\r\n", { kind: "none" }, true],
    [
      "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
      { kind: "length", length: 5 },
      false,
    ],
    [
      "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: Upgrade, Close\r\n\r\n",
      { kind: "length", length: 5 },
      false,
    ],
    [
      "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: closed\r\n\r\n",
      { kind: "length", length: 5 },
      true,
    ],
    ["HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n", { kind: "length", length: 5 }, false],
    // Framed both ways: chunked wins and the connection is not trusted with another request.
    [
      "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
      { kind: "chunked" },
      false,
    ],
  ])("framing of %j", (text, framing, keepAlive) => {
    const { head } = parseHead(text);
    expect(head.framing).toEqual(framing as never);
    expect(head.keepAlive).toBe(keepAlive);
  });

  test("an answer to HEAD has no body whatever its headers say", () => {
    expect(parseHead("HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n", true).head.framing).toEqual({
      kind: "none",
    });
  });

  test.each([
    ["garbage", "MALFORMED_STATUS_LINE"],
    ["SSH-2.0-OpenSSH_9.6\r\n", "MALFORMED_STATUS_LINE"],
    ["HTTP/2 200\r\n\r\n", "MALFORMED_STATUS_LINE"],
    ["HTTP/1.1 20 OK\r\n\r\n", "MALFORMED_STATUS_LINE"],
    ["HTTP/1.1 2000 OK\r\n\r\n", "MALFORMED_STATUS_LINE"],
    ["HTTP/1.1  200 OK\r\n\r\n", "MALFORMED_STATUS_LINE"],
    ["HTTP/1.1 200 O\x00K\r\n\r\n", "MALFORMED_STATUS_LINE"],
    ["HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "MALFORMED_HEADER"],
    ["HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", "MALFORMED_HEADER"],
    ["HTTP/1.1 200 OK\r\nname : x\r\n\r\n", "MALFORMED_HEADER"],
    ["HTTP/1.1 200 OK\r\na: b\r\n folded\r\n\r\n", "MALFORMED_HEADER"],
    ["HTTP/1.1 200 OK\r\na: b\rc\r\n\r\n", "MALFORMED_HEADER"],
    ["HTTP/1.1 200 OK\r\na: b\x00c\r\n\r\n", "MALFORMED_HEADER"],
    ["HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "BAD_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\ncontent-length: 1e3\r\n\r\n", "BAD_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n", "BAD_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\n", "BAD_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n", "BAD_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\ncontent-length: 9999999999999999\r\n\r\n", "BAD_CONTENT_LENGTH"],
  ])("%j is refused as %s", (text, code) => {
    expect(codeOf(() => parseResponseHead(bytes(text), headerBytesMax))).toBe(code);
  });

  test("a head longer than the bound is refused once the bound is reached, not before", () => {
    const long = `HTTP/1.1 200 OK\r\nx-pad: ${"a".repeat(headerBytesMax)}`;
    expect(parseResponseHead(bytes(long.slice(0, headerBytesMax - 1)), headerBytesMax).complete).toBe(false);
    expect(codeOf(() => parseResponseHead(bytes(long), headerBytesMax))).toBe("HEADERS_TOO_LARGE");
    // The blank line just past the bound does not save it.
    const justOver = `HTTP/1.1 200 OK\r\nx-pad: ${"a".repeat(headerBytesMax - 27)}\r\n\r\n`;
    expect(justOver.length).toBe(headerBytesMax + 1);
    expect(codeOf(() => parseResponseHead(bytes(justOver), headerBytesMax))).toBe("HEADERS_TOO_LARGE");
    expect(parseResponseHead(bytes(`${justOver.slice(0, -3)}\n\n`), headerBytesMax).complete).toBe(true);
  });
});

describe("requestHead", () => {
  test("writes the request line, host, content-length and the headers in order", () => {
    const head = requestHead(
      "POST",
      "/hook?a=1",
      "hook.test:8443",
      { "content-type": "application/json" },
      12,
    );
    expect(head).toBe(
      "POST /hook?a=1 HTTP/1.1\r\nhost: hook.test:8443\r\ncontent-length: 12\r\ncontent-type: application/json\r\n\r\n",
    );
  });

  test("writes no content-length for a request without a body", () => {
    expect(requestHead("GET", "/", "h", {}, undefined)).toBe("GET / HTTP/1.1\r\nhost: h\r\n\r\n");
  });

  test.each([
    [{ "x-a": "b\r\nx-injected: 1" }],
    [{ "x-a": "b\nc" }],
    [{ "x-a": "b\u0000" }],
    [{ "x-a": "é" }],
    [{ "bad name": "b" }],
    [{ Host: "other.test" }],
    [{ "Content-Length": "1" }],
    [{ "transfer-encoding": "chunked" }],
  ])("refuses header %j", (headers) => {
    expect(() => requestHead("POST", "/", "h", headers, 0)).toThrow(TypeError);
  });

  test("refuses a request target or method that would split the request line", () => {
    expect(() => requestHead("POST", "/a b", "h", {}, 0)).toThrow(TypeError);
    expect(() => requestHead("POST", "/a\r\nx: y", "h", {}, 0)).toThrow(TypeError);
    expect(() => requestHead("PO ST", "/", "h", {}, 0)).toThrow(TypeError);
  });
});

describe("ChunkedDecoder", () => {
  function decodeAll(pieces: string[]): { body: string; end: number; lastPiece: number } {
    const decoder = new ChunkedDecoder();
    let body = "";
    for (const [index, piece] of pieces.entries()) {
      const end = decoder.push(bytes(piece), 0, (data) => {
        body += new TextDecoder().decode(data);
      });
      if (end >= 0) return { body, end, lastPiece: index };
    }
    return { body, end: -1, lastPiece: pieces.length - 1 };
  }

  test("decodes chunks, skips extensions and trailers, and says where the body ended", () => {
    const wire = "5\r\nhello\r\n7;name=value\r\n, world\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
    const { body, end } = decodeAll([wire]);
    expect(body).toBe("hello, world0123456789");
    expect(wire.slice(end)).toBe("NEXT");
  });

  test("gives the same body whatever the pieces are cut at", () => {
    const wire = "3\r\nabc\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
    for (let cut = 1; cut < wire.length; cut++) {
      const { body, end, lastPiece } = decodeAll([wire.slice(0, cut), wire.slice(cut)]);
      expect(body).toBe("abcabcdefghijklmnopqrstuvwxyz");
      expect(lastPiece === 0 ? end : cut + end).toBe(wire.length);
    }
    const oneByteAtATime = decodeAll([...wire]);
    expect(oneByteAtATime.body).toBe("abcabcdefghijklmnopqrstuvwxyz");
  });

  test("accepts bare LF line ends and uppercase hex", () => {
    expect(decodeAll(["B\nhello world\n0\n\n"]).body).toBe("hello world");
  });

  test("wants more until the last chunk's empty line", () => {
    expect(decodeAll(["5\r\nhello\r\n0\r\n"]).end).toBe(-1);
    expect(decodeAll(["5\r\nhel"]).end).toBe(-1);
  });

  test.each([
    ["no size", "\r\nabc\r\n0\r\n\r\n"],
    ["not hex", "zz\r\n"],
    ["negative", "-5\r\n"],
    ["too many digits", "10000000000000\r\n"],
    ["data longer than its size", "3\r\nabcd\r\n0\r\n\r\n"],
    ["CR without LF after the size", "3\rabc"],
    ["junk after the size", "3x\r\nabc\r\n"],
    ["control byte in an extension", "3;a\u0001\r\nabc\r\n"],
    ["size line over the bound", `3;${"x".repeat(2000)}\r\n`],
    ["trailer over the bound", `0\r\n${"x-t: y\r\n".repeat(2000)}\r\n`],
  ])("refuses %s", (_, wire) => {
    expect(codeOf(() => decodeAll([wire]))).toBe("BAD_CHUNK");
  });
});
