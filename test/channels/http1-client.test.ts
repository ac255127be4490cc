// The HTTP/1.1 client against real servers: Bun.serve over http and https (a CA and certificates made
// here with the openssl CLI), and raw Bun.listen servers that misbehave on purpose. Servers count
// connections and requests on their side.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, TCPSocketListener, TLSOptions } from "bun";
import { Http1Client, type Http1ClientOptions, type Http1Response } from "../../src/channels/http1-client.ts";
import { Http1Error } from "../../src/channels/http1-parse.ts";
import { HttpSink } from "./sink.ts";

const dir = mkdtempSync(join(tmpdir(), "alerting-http1-"));
const file = (name: string) => join(dir, name);

function openssl(args: string): void {
  const run = Bun.spawnSync(["openssl", ...args.split(" ")], { cwd: dir });
  if (!run.success) throw new Error(`openssl ${args}: ${run.stderr}`);
}

const ecKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
// A CA, a server certificate it signs for hook.test, and a self-signed one for hook.test nobody trusts.
openssl(
  `req -x509 ${ecKey} -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem ` +
    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
);
openssl(`req ${ecKey} -subj /CN=hook.test -keyout hook.key -out hook.csr`);
writeFileSync(
  file("hook.ext"),
  "subjectAltName=DNS:hook.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
);
openssl(
  "x509 -req -in hook.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile hook.ext -out hook.pem",
);
openssl(
  `req -x509 ${ecKey} -days 1 -subj /CN=hook.test -addext subjectAltName=DNS:hook.test -keyout self.key -out self.pem`,
);
const caPem = readFileSync(file("ca.pem"), "utf8");

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true });
});

function newClient(options: Partial<Http1ClientOptions> = {}): Http1Client {
  const client = new Http1Client({ connectTimeoutMs: 2000, responseTimeoutMs: 2000, ...options });
  cleanups.push(() => client.close());
  return client;
}

function newSink(...args: ConstructorParameters<typeof HttpSink>): HttpSink {
  const sink = new HttpSink(...args);
  cleanups.push(() => sink.stop());
  return sink;
}

const text = (response: Http1Response) => new TextDecoder().decode(response.body);

/** The rejection of `promise` as an Http1Error code, or the error's name when it is not one. */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return error instanceof Http1Error ? error.code : (error as Error).name;
  }
  throw new Error("the request succeeded");
}

interface RawRequest {
  head: string;
  body: string;
  /** 0 for the first request on its connection. */
  indexOnConnection: number;
}

interface RawConnection {
  buffer: Buffer;
  requests: number;
}

/**
 * A TCP server speaking just enough HTTP/1.1 to read requests (head and content-length body); each
 * test scripts what it writes back on the raw socket.
 */
class RawServer {
  connections = 0;
  readonly requests: RawRequest[] = [];
  private readonly listener: TCPSocketListener<RawConnection>;

  constructor(answer: (socket: Socket<RawConnection>, request: RawRequest) => void) {
    this.listener = Bun.listen<RawConnection>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (socket) => {
          this.connections++;
          socket.data = { buffer: Buffer.alloc(0), requests: 0 };
        },
        data: (socket, chunk) => {
          const state = socket.data;
          state.buffer = Buffer.concat([state.buffer, chunk]);
          for (;;) {
            const headEnd = state.buffer.indexOf("\r\n\r\n");
            if (headEnd < 0) return;
            const head = state.buffer.subarray(0, headEnd).toString("latin1");
            const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
            if (state.buffer.length < headEnd + 4 + length) return;
            const body = state.buffer.subarray(headEnd + 4, headEnd + 4 + length).toString();
            state.buffer = state.buffer.subarray(headEnd + 4 + length);
            const request = { head, body, indexOnConnection: state.requests++ };
            this.requests.push(request);
            answer(socket, request);
          }
        },
      },
    });
    cleanups.push(() => this.listener.stop(true));
  }

  url(path = "/hook", host = "127.0.0.1"): URL {
    return new URL(`http://${host}:${this.listener.port}${path}`);
  }
}

const okResponse = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

describe("http", () => {
  test("sends the body with its byte length to the pinned address, with the URL's Host", async () => {
    const sink = newSink((request) =>
      Response.json({ length: request.body.length }, { status: 201, headers: { "retry-after": "3" } }),
    );
    const client = newClient();
    const body = JSON.stringify({ text: "naïve ☃ 🚨" });
    const response = await client.request({
      url: new URL(sink.url("/hook?x=1", "hook.test")),
      address: "127.0.0.1",
      headers: { "content-type": "application/json", "idempotency-key": "42" },
      body,
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("retry-after")).toBe("3");
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(JSON.parse(text(response))).toEqual({ length: body.length });
    const [received] = sink.received;
    expect(received?.body).toBe(body);
    expect(received?.path).toBe("/hook");
    expect(received?.headers.get("host")).toBe(`hook.test:${new URL(sink.url()).port}`);
    expect(received?.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
    expect(received?.headers.get("idempotency-key")).toBe("42");
  });

  test("keep-alive: sequential requests share one connection", async () => {
    const sink = newSink();
    const client = newClient();
    for (let i = 0; i < 25; i++) {
      const response = await client.request({ url: new URL(sink.url()), body: `{"i":${i}}` });
      expect(response.status).toBe(200);
    }
    expect(sink.received).toHaveLength(25);
    expect(sink.connectionsSeen()).toBe(1);
    expect(client.stats()).toMatchObject({ opened: 1, connections: 1, idle: 1, retried: 0 });
  });

  test("concurrent requests open at most connectionsPerOriginMax connections and all complete", async () => {
    const sink = newSink(async () => {
      await Bun.sleep(5);
      return new Response("ok");
    });
    const client = newClient({ connectionsPerOriginMax: 4 });
    const url = new URL(sink.url());
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) => client.request({ url, body: String(i) })),
    );
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(sink.received.map((request) => Number(request.body)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 60 }, (_, i) => i),
    );
    expect(sink.connectionsSeen()).toBeLessThanOrEqual(4);
    expect(sink.inFlightMax).toBeLessThanOrEqual(4);
    expect(client.stats()).toMatchObject({ opened: sink.connectionsSeen(), waiting: 0 });
  });

  test("a large request body is written whole, and a chunked response is decoded", async () => {
    const sink = newSink((request) => {
      const stream = new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode(`received ${request.body.length} bytes`));
          await Bun.sleep(5);
          controller.enqueue(new TextEncoder().encode(", thanks"));
          controller.close();
        },
      });
      return new Response(stream);
    });
    const client = newClient();
    const body = "x".repeat(8 * 1024 * 1024);
    const response = await client.request({ url: new URL(sink.url()), body });
    expect(response.headers.get("transfer-encoding")).toBe("chunked");
    expect(text(response)).toBe(`received ${body.length} bytes, thanks`);
    // The connection stays usable after both.
    expect((await client.request({ url: new URL(sink.url()), body: "{}" })).status).toBe(200);
    expect(sink.connectionsSeen()).toBe(1);
  });

  test("a body longer than bodyBytesMax is cut there and its connection not reused", async () => {
    const sink = newSink(() => new Response("y".repeat(100_000)));
    const client = newClient({ bodyBytesMax: 1000 });
    const first = await client.request({ url: new URL(sink.url()), body: "" });
    expect(first.body.length).toBe(1000);
    expect(first.bodyTruncated).toBe(true);
    await client.request({ url: new URL(sink.url()), body: "" });
    expect(sink.connectionsSeen()).toBe(2);
  });

  test("connectionsMax holds across origins: a waiting origin gets a slot when one frees", async () => {
    const slow = newSink(async () => {
      await Bun.sleep(150);
      return new Response("slow");
    });
    const fast = newSink();
    const client = newClient({ connectionsMax: 2 });
    const slowRequests = [0, 1].map(() => client.request({ url: new URL(slow.url()), body: "" }));
    const fastRequest = client.request({ url: new URL(fast.url()), body: "" });
    await Bun.sleep(50);
    expect(client.stats()).toMatchObject({ connections: 2, waiting: 1 });
    expect(fast.received).toHaveLength(0);
    expect(text(await fastRequest)).toBe("ok");
    await Promise.all(slowRequests);
    expect(client.stats().connections).toBeLessThanOrEqual(2);
    // An idle connection of another origin is closed to make room.
    expect(text(await client.request({ url: new URL(slow.url()), body: "" }))).toBe("slow");
    expect(client.stats().connections).toBeLessThanOrEqual(2);
  });

  test("requests beyond waitingPerOriginMax fail with QUEUE_FULL", async () => {
    const server = new RawServer((socket) => setTimeout(() => socket.write(okResponse), 100));
    const client = newClient({ connectionsPerOriginMax: 1, waitingPerOriginMax: 1 });
    const url = server.url();
    const [first, second, third] = [0, 1, 2].map(() => client.request({ url, body: "" }));
    expect(await failure(third as Promise<unknown>)).toBe("QUEUE_FULL");
    expect((await first)?.status).toBe(200);
    expect((await second)?.status).toBe(200);
    expect(server.requests).toHaveLength(2);
  });

  test("a connection the server closed while idle is dropped from the pool, not reused", async () => {
    const server = new RawServer((socket) => {
      socket.write(okResponse);
      setTimeout(() => socket.end(), 20);
    });
    const client = newClient();
    await client.request({ url: server.url(), body: "" });
    await Bun.sleep(150);
    expect(client.stats().connections).toBe(0);
    await client.request({ url: server.url(), body: "" });
    expect(server.connections).toBe(2);
    expect(client.stats().retried).toBe(0);
  });

  test("idle connections close after idleTimeoutMs", async () => {
    const server = new RawServer((socket) => socket.write(okResponse));
    const client = newClient({ idleTimeoutMs: 100 });
    await client.request({ url: server.url(), body: "" });
    expect(client.stats().idle).toBe(1);
    await Bun.sleep(300);
    expect(client.stats()).toMatchObject({ connections: 0, idle: 0 });
  });
});

describe("retry on a reused connection the server closed", () => {
  test("the request is sent again, once, on a new connection", async () => {
    // The server's idle timer fires just as the second request arrives: it closes without answering.
    const server = new RawServer((socket, request) => {
      if (request.indexOnConnection === 0) socket.write(okResponse);
      else socket.end();
    });
    const client = newClient();
    await client.request({ url: server.url(), body: "first" });
    const second = await client.request({ url: server.url(), body: "second" });
    expect(second.status).toBe(200);
    expect(server.requests.map((request) => request.body)).toEqual(["first", "second", "second"]);
    expect(server.connections).toBe(2);
    expect(client.stats().retried).toBe(1);
  });

  test("not on a new connection: the close is the answer", async () => {
    const server = new RawServer((socket) => socket.end());
    const client = newClient();
    expect(await failure(client.request({ url: server.url(), body: "" }))).toBe("CONNECTION_CLOSED");
    expect(server.requests).toHaveLength(1);
  });

  test("not once a response byte arrived", async () => {
    const server = new RawServer((socket, request) => {
      if (request.indexOnConnection === 0) socket.write(okResponse);
      else socket.end("HTTP/1.1 200");
    });
    const client = newClient();
    await client.request({ url: server.url(), body: "" });
    expect(await failure(client.request({ url: server.url(), body: "" }))).toBe("CONNECTION_CLOSED");
    expect(server.requests).toHaveLength(2);
  });

  test("not twice", async () => {
    const server = new RawServer((socket, request) => {
      if (request.body === "again") socket.end();
      else socket.write(okResponse);
    });
    const client = newClient();
    const url = server.url();
    await client.request({ url, body: "" });
    expect(await failure(client.request({ url, body: "again" }))).toBe("CONNECTION_CLOSED");
    expect(server.requests.map((request) => [request.body, request.indexOnConnection])).toEqual([
      ["", 0],
      ["again", 1],
      ["again", 0],
    ]);
    expect(client.stats().retried).toBe(1);
  });
});

describe("malformed responses fail fast with a typed error", () => {
  const cases: Array<[string, string | ((socket: Socket<RawConnection>) => void), string]> = [
    ["garbage status line", "HTTP/1.1 OK 200\r\n\r\n", "MALFORMED_STATUS_LINE"],
    ["not HTTP, connection left open", "SSH-2.0-OpenSSH_9.6", "MALFORMED_STATUS_LINE"],
    ["bad header line", "HTTP/1.1 200 OK\r\ncontent-length 2\r\n\r\nok", "MALFORMED_HEADER"],
    [
      "oversized headers, connection left open",
      (socket) => socket.write(`HTTP/1.1 200 OK\r\nx-pad: ${"a".repeat(40_000)}`),
      "HEADERS_TOO_LARGE",
    ],
    [
      "bad chunk size",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
      "BAD_CHUNK",
    ],
    [
      "chunk longer than its size",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n",
      "BAD_CHUNK",
    ],
    [
      "chunked body cut by the close",
      (socket) => socket.end("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel"),
      "TRUNCATED_BODY",
    ],
    [
      "content-length body cut by the close",
      (socket) => socket.end("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b"),
      "TRUNCATED_BODY",
    ],
    [
      "body longer than its content-length",
      "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokay",
      "EXCESS_DATA",
    ],
    [
      "conflicting content-lengths",
      "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
      "BAD_CONTENT_LENGTH",
    ],
    ["head cut by the close", (socket) => socket.end("HTTP/1.1 200 OK\r\ncontent-le"), "CONNECTION_CLOSED"],
    [
      "a switch of protocols",
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
      "UNEXPECTED_STATUS",
    ],
  ];

  test.each(cases)("%s", async (_, answer, code) => {
    const server = new RawServer((socket) =>
      typeof answer === "string" ? socket.write(answer) : answer(socket),
    );
    const client = newClient({ responseTimeoutMs: 5000 });
    const startedMs = performance.now();
    expect(await failure(client.request({ url: server.url(), body: "" }))).toBe(code);
    expect(performance.now() - startedMs).toBeLessThan(1000);
    // The connection is not reused: the next request opens another.
    expect(client.stats().connections).toBe(0);
  });

  test("a close-delimited body and interim 1xx answers are read as they should be", async () => {
    const server = new RawServer((socket, request) =>
      request.body === "close"
        ? socket.end("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        : socket.write(
            `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n${okResponse}`,
          ),
    );
    const client = newClient();
    const closeDelimited = await client.request({ url: server.url(), body: "close" });
    expect([closeDelimited.status, text(closeDelimited)]).toEqual([200, "until the end"]);
    const afterInterim = await client.request({ url: server.url(), body: "interim" });
    expect([afterInterim.status, text(afterInterim)]).toEqual([200, "ok"]);
  });

  test("bytes sent on an idle connection close it", async () => {
    const server = new RawServer((socket) => {
      socket.write(okResponse);
      setTimeout(() => socket.write("HTTP/1.1 200 OK\r\n"), 20);
    });
    const client = newClient();
    await client.request({ url: server.url(), body: "" });
    await Bun.sleep(200);
    expect(client.stats().connections).toBe(0);
  });
});

describe("timeouts", () => {
  test("responseTimeoutMs fails a request the server never answers, and drops its connection", async () => {
    let closedByClient = false;
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data: () => {},
        close: () => {
          closedByClient = true;
        },
      },
    });
    cleanups.push(() => listener.stop(true));
    const client = newClient({ responseTimeoutMs: 200 });
    const startedMs = performance.now();
    const request = client.request({ url: new URL(`http://127.0.0.1:${listener.port}/`), body: "" });
    const error = await request.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Http1Error);
    expect(error).toMatchObject({ code: "RESPONSE_TIMEOUT", name: "TimeoutError" });
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(190);
    expect(performance.now() - startedMs).toBeLessThan(1000);
    await Bun.sleep(50);
    expect(closedByClient).toBe(true);
  });

  test("connectTimeoutMs covers the TLS handshake", async () => {
    // Accepts TCP and never answers the ClientHello.
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    cleanups.push(() => listener.stop(true));
    const client = newClient({ connectTimeoutMs: 200 });
    const url = new URL(`https://hook.test:${listener.port}/`);
    const error = await client.request({ url, address: "127.0.0.1", body: "" }).catch((caught) => caught);
    expect(error).toMatchObject({ code: "CONNECT_TIMEOUT", name: "TimeoutError" });
    expect(client.stats().connections).toBe(0);
  });

  test("an AbortSignal ends the request with its reason, on a connection or waiting for one", async () => {
    const server = new RawServer(() => {});
    const client = newClient({ connectionsPerOriginMax: 1 });
    const url = server.url();
    const onConnection = client.request({ url, body: "", signal: AbortSignal.timeout(100) });
    const controller = new AbortController();
    const waiting = client.request({ url, body: "", signal: controller.signal });
    await Bun.sleep(20);
    expect(client.stats().waiting).toBe(1);
    controller.abort(new Error("no longer wanted"));
    expect(await waiting.catch((error: Error) => error.message)).toBe("no longer wanted");
    expect(client.stats().waiting).toBe(0);
    expect(await failure(onConnection)).toBe("TimeoutError");
    expect(client.stats().connections).toBe(0);
    expect(server.requests).toHaveLength(1);
  });

  test("a request's timeoutMs ends it on a connection or waiting for one, without a timer of its own", async () => {
    const server = new RawServer(() => {});
    const client = newClient({ connectionsPerOriginMax: 1, responseTimeoutMs: 5000 });
    const url = server.url();
    const startedMs = performance.now();
    const [onConnection, waiting] = await Promise.all(
      [300, 100].map((timeoutMs) => client.request({ url, body: "", timeoutMs }).catch((error) => error)),
    );
    expect(onConnection).toMatchObject({ code: "RESPONSE_TIMEOUT", name: "TimeoutError" });
    expect(waiting).toMatchObject({ code: "CONNECT_TIMEOUT", name: "TimeoutError" });
    expect(waiting.message).toContain("waited for a connection");
    expect(performance.now() - startedMs).toBeLessThan(1000);
    expect(client.stats()).toMatchObject({ waiting: 0, connections: 0 });
    expect(server.requests).toHaveLength(1);
  });

  test("a timeoutMs already spent fails at once", async () => {
    const client = newClient();
    const request = client.request({ url: new URL("http://127.0.0.1:9/"), body: "", timeoutMs: 0 });
    expect(await request.catch((error) => error)).toMatchObject({ code: "CONNECT_TIMEOUT" });
    expect(client.stats().opened).toBe(0);
  });

  test("a refused connection keeps its code (the transport tries the next address on it)", async () => {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    const port = listener.port;
    listener.stop(true);
    const client = newClient();
    const error = await client
      .request({ url: new URL(`http://127.0.0.1:${port}/`), body: "" })
      .catch((e) => e);
    expect(error).toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("https", () => {
  const tlsSink = (cert: "hook" | "self" = "hook") =>
    newSink(undefined, { cert: Bun.file(file(`${cert}.pem`)), key: Bun.file(file(`${cert}.key`)) });

  test("verifies the certificate against the URL's name (SNI) while connecting to the pinned address", async () => {
    // The server presents the CA-signed certificate only to clients that ask for hook.test by SNI.
    const sink = newSink(undefined, [
      { cert: Bun.file(file("self.pem")), key: Bun.file(file("self.key")) },
      { serverName: "hook.test", cert: Bun.file(file("hook.pem")), key: Bun.file(file("hook.key")) },
    ] as TLSOptions);
    const client = newClient({ ca: caPem });
    for (let i = 0; i < 5; i++) {
      const response = await client.request({
        url: new URL(sink.url("/hook", "hook.test")),
        address: "127.0.0.1",
        body: `${i}`,
      });
      expect(response.status).toBe(200);
    }
    expect(sink.received.map((request) => request.headers.get("host"))).toEqual(
      Array(5).fill(`hook.test:${new URL(sink.url()).port}`),
    );
    expect(sink.connectionsSeen()).toBe(1);
  });

  test("refuses a certificate for another name, one no trusted CA signed, and an untrusted CA", async () => {
    const sink = tlsSink();
    const selfSigned = tlsSink("self");
    const trusting = newClient({ ca: caPem });
    const untrusting = newClient();
    const post = (client: Http1Client, url: string) =>
      client.request({ url: new URL(url), address: "127.0.0.1", body: "" }).catch((error) => error);
    const wrongName = await post(trusting, sink.url("/hook", "evil.test"));
    const notSigned = await post(trusting, selfSigned.url("/hook", "hook.test"));
    const caNotTrusted = await post(untrusting, sink.url("/hook", "hook.test"));
    expect(wrongName).toMatchObject({ code: "TLS_HANDSHAKE_FAILED" });
    expect(wrongName.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(notSigned).toMatchObject({ code: "TLS_HANDSHAKE_FAILED" });
    expect(notSigned.message).toContain("SELF_SIGNED");
    expect(caNotTrusted).toMatchObject({ code: "TLS_HANDSHAKE_FAILED" });
    expect(caNotTrusted.message).toContain("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(sink.received).toHaveLength(0);
    expect(selfSigned.received).toHaveLength(0);
  });

  test("an https URL served by plain http fails the handshake at once", async () => {
    // Answers the ClientHello as a plain http server answers anything it cannot read.
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (socket) => void socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n") },
    });
    cleanups.push(() => listener.stop(true));
    const client = newClient({ ca: caPem });
    const url = new URL(`https://hook.test:${listener.port}/`);
    const startedMs = performance.now();
    const error = await client.request({ url, address: "127.0.0.1", body: "" }).catch((caught) => caught);
    expect(error).toMatchObject({ code: "TLS_HANDSHAKE_FAILED" });
    expect(performance.now() - startedMs).toBeLessThan(1000);
  });

  test("without `ca`, the system trust store is used; an idle connection does not keep a process alive", async () => {
    // OpenSSL's SSL_CERT_FILE stands in for the machine's store (Bun reads it at start-up), so the test
    // needs no change to the machine. The child leaves its connection idle in the pool and ends.
    const sink = tlsSink();
    const script = file("system-store.ts");
    writeFileSync(
      script,
      `import { Http1Client } from ${JSON.stringify(join(import.meta.dir, "../../src/channels/http1-client.ts"))};
const client = new Http1Client({ idleTimeoutMs: 60_000 });
const url = new URL(process.argv[2]);
const response = await client.request({ url, address: "127.0.0.1", body: "" }).catch((error) => error);
console.log(JSON.stringify([response.status ?? response.code, client.stats().idle]));`,
    );
    // Asynchronously: the sink answers from this process's event loop.
    const run = async (env: Record<string, string>) => {
      const child = Bun.spawn([process.execPath, script, sink.url("/hook", "hook.test")], {
        env: { ...process.env, ...env },
        stderr: "inherit",
      });
      const kill = setTimeout(() => child.kill(), 15_000);
      const output = await new Response(child.stdout).text();
      await child.exited;
      clearTimeout(kill);
      return [child.signalCode === null ? "exited" : "killed", ...JSON.parse(output)];
    };
    expect(await run({ SSL_CERT_FILE: file("ca.pem") })).toEqual(["exited", 200, 1]);
    expect(await run({})).toEqual(["exited", "TLS_HANDSHAKE_FAILED", 0]);
  });
});
