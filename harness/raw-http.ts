/**
 * One HTTP/1.1 request over a plain socket, sent exactly as written: for what our own clients never
 * send, such as a Content-Length far beyond the bytes that follow it. Resolves with the first reply.
 */
import { connect } from "node:net";

export interface RawReply {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  body: string;
}

export function rawRequest(
  url: string,
  request: { method: string; path: string; headers: Record<string, string>; body?: string },
  timeoutMs = 10_000,
): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  const head = [
    `${request.method} ${request.path} HTTP/1.1`,
    `host: ${hostname}:${port}`,
    ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
  ].join("\r\n");
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const socket = connect(Number(port), hostname, () =>
      socket.write(`${head}\r\n\r\n${request.body ?? ""}`),
    );
    const timer = setTimeout(() => finish(new Error(`no complete reply within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error?: Error, reply?: RawReply) => {
      clearTimeout(timer);
      socket.destroy();
      if (reply) resolve(reply);
      else reject(error);
    };
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const reply = parseReply(received);
      if (reply) finish(undefined, reply);
    });
    // The server may close as soon as it has answered, while we are still writing.
    socket.on("error", () => {});
    socket.on("close", () =>
      finish(new Error(`connection closed after ${received.length} bytes: ${received.toString()}`)),
    );
  });
}

/** The reply once its head and Content-Length bytes of body are in, else undefined. */
function parseReply(bytes: Buffer): RawReply | undefined {
  const headEnd = bytes.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const [statusLine = "", ...lines] = bytes.subarray(0, headEnd).toString("latin1").split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const body = bytes.subarray(headEnd + 4);
  const length = Number(headers.get("content-length") ?? 0);
  if (body.length < length) return undefined;
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: body.subarray(0, length).toString("utf8"),
  };
}
