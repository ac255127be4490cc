/**
 * A small HTTP/1.1 client on Bun.connect for webhook POSTs. Bun's fetch takes 1.5-3x its CPU per
 * request and, past ~64 requests in flight, opens a connection per request (bench/webhook-client.ts).
 *
 * - Pool: keep-alive connections per origin, where an origin is the address connected to, the port
 *   and the TLS server name, so a connection verified for one name never serves another. Bounded:
 *   connections per origin, connections in all, requests waiting per origin; an idle connection is
 *   closed after `idleTimeoutMs`, the most recently used one is reused first.
 * - Pinned addresses: the request names the URL as configured (Host header, TLS server name and
 *   certificate check) and, apart, the address to connect to (the SSRF guard's checked address).
 * - TLS: the certificate is verified (chain and name) against Bun's trust store (its bundled roots,
 *   the system store and NODE_EXTRA_CA_CERTS: the same as fetch) or `ca` when given; a failure is an
 *   error whatever NODE_TLS_REJECT_UNAUTHORIZED says.
 * - Retry: a request on a reused connection that the server closed before sending a byte of the
 *   response (it timed the connection out while idle) is sent once more, on a new connection.
 * - Timeouts: connecting (TCP and TLS) within `connectTimeoutMs`, the whole response within
 *   `responseTimeoutMs` of the request being written; per request, an AbortSignal and/or `timeoutMs`.
 *   One sweep timer checks every deadline (cheaper than a timer per request).
 * - Responses: status, headers and at most `bodyBytesMax` bytes of body; a longer body is cut there
 *   and its connection closed. Anything unreadable (http1-parse.ts) fails the request with an
 *   Http1Error and closes the connection; nothing waits on a misbehaving server past its timeout.
 */
import { isIP } from "node:net";
import type { Socket, SocketHandler, TLSOptions } from "bun";
import {
  ChunkedDecoder,
  Http1Error,
  Http1TimeoutError,
  parseResponseHead,
  type ResponseHead,
  requestHead,
} from "./http1-parse.ts";

export interface Http1ClientOptions {
  /** Connections per origin, connecting, busy and idle together. */
  connectionsPerOriginMax: number;
  /** Connections in all; an idle one of another origin is closed to make room. */
  connectionsMax: number;
  /** Requests waiting for a connection, per origin; beyond it a request fails with QUEUE_FULL. */
  waitingPerOriginMax: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** Status line and header fields together, for each response. */
  headerBytesMax: number;
  /** Body bytes kept (and read) per response. */
  bodyBytesMax: number;
  /** Trusted certificates (PEM) in place of the default trust store: for tests and private CAs. */
  ca?: string | string[];
}

export const defaultHttp1ClientOptions: Http1ClientOptions = {
  connectionsPerOriginMax: 256,
  connectionsMax: 1024,
  waitingPerOriginMax: 4096,
  // Below the 5 s keep-alive timeout of Node's http server, the commonest receiver, so that the race
  // the retry covers (the server closing just as a request goes out) is rare.
  idleTimeoutMs: 4000,
  connectTimeoutMs: 10_000,
  responseTimeoutMs: 30_000,
  headerBytesMax: 16 * 1024,
  bodyBytesMax: 64 * 1024,
};

export interface Http1Request {
  /** The URL as configured: its host goes into the Host header and, for https, the TLS server name. */
  url: URL;
  /** The IP address to connect to in place of resolving the URL's host (the SSRF guard's check). */
  address?: string;
  /** POST unless given. */
  method?: string;
  /** Without host, content-length and transfer-encoding: the client sets those. */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /**
   * A deadline for the whole request from this call (waiting for a connection, connecting, the
   * response) on top of the client's timeouts. Cheaper than an AbortSignal.timeout: the client's one
   * sweep timer checks it, so it fires up to an eighth of the client's shortest timeout late.
   */
  timeoutMs?: number;
}

export interface Http1Response {
  status: number;
  headers: Headers;
  /** At most `bodyBytesMax` bytes. */
  body: Uint8Array;
  /** The body went on past `bodyBytesMax`; the rest was not read. */
  bodyTruncated: boolean;
}

export interface Http1ClientStats {
  connections: number;
  idle: number;
  waiting: number;
  /** Connections opened since the client was made. */
  opened: number;
  /** Requests sent again after a reused connection turned out closed. */
  retried: number;
}

/** 1xx answers (100 Continue, 103 Early Hints) skipped before the final one, at most. */
const interimHeadsMax = 4;

/** Parsed URLs kept at most (a sender posts to the same few URLs thousands of times a second). */
const targetsCachedMax = 4096;

interface Target {
  secure: boolean;
  /** Without IPv6 brackets. */
  hostname: string;
  port: number;
  /** The TLS name to send and verify; "" for plain http and for an IP literal host. */
  serverName: string;
  /** For the Host header: name and port as the URL has them. */
  host: string;
  pathAndQuery: string;
  /** The pool key without the address connected to. */
  originKey: string;
  /** The pool last used for this URL: most requests go to the same address, so no key is built. */
  lastPool: OriginPool | undefined;
}

interface OriginPool {
  key: string;
  hostname: string;
  port: number;
  /** undefined for plain http; true: TLS with the default trust store, verified against the address. */
  tls: TLSOptions | true | undefined;
  /** Connections of this origin, in any state but closed. */
  open: number;
  /** Most recently used last. */
  idle: Connection[];
  waiting: Exchange[];
}

/** One request from the call to its settlement, across a retry. */
class Exchange {
  connection: Connection | undefined;
  /** The current attempt went out on a connection that had served a request before. */
  onReusedConnection = false;
  retried = false;
  settled = false;
  onAbort: (() => void) | undefined;
  /** From the request's timeoutMs; Infinity without one. */
  deadlineMs = Number.POSITIVE_INFINITY;

  constructor(
    readonly pool: OriginPool,
    readonly payload: string | Uint8Array,
    readonly payloadBytes: number,
    readonly noBody: boolean,
    readonly resolve: (response: Http1Response) => void,
    readonly reject: (error: unknown) => void,
    readonly signal: AbortSignal | undefined,
  ) {}
}

type ConnectionState = "connecting" | "busy" | "idle" | "closed";

class Connection {
  socket: Socket<Connection> | undefined;
  state: ConnectionState = "connecting";
  /** When the current state times out: connect, response or idle deadline. */
  deadlineMs: number;
  exchange: Exchange | undefined;
  exchangesDone = 0;
  /** Request bytes the socket did not take yet; written on drain. */
  unsent: Uint8Array | undefined;
  // The response being read.
  responseStarted = false;
  pendingHead: Uint8Array | undefined;
  interimHeads = 0;
  head: ResponseHead | undefined;
  bodyRemaining = 0;
  chunked: ChunkedDecoder | undefined;
  bodyChunks: Uint8Array[] = [];
  bodyBytes = 0;
  bodyTruncated = false;
  /** Bound once: the chunked decoder calls it for every piece of data. */
  readonly keep = (data: Uint8Array) => this.keepBody(data, 0, data.length);

  constructor(
    readonly pool: OriginPool,
    private readonly bodyBytesMax: number,
    deadlineMs: number,
  ) {
    this.deadlineMs = deadlineMs;
  }

  resetResponse(): void {
    this.responseStarted = false;
    this.pendingHead = undefined;
    this.interimHeads = 0;
    this.head = undefined;
    this.chunked = undefined;
    this.bodyChunks.length = 0;
    this.bodyBytes = 0;
    this.bodyTruncated = false;
  }

  /** Copies `bytes` from `start` to `end` (Bun may reuse a read buffer), up to bodyBytesMax in all. */
  keepBody(bytes: Uint8Array, start: number, end: number): void {
    const room = this.bodyBytesMax - this.bodyBytes;
    if (end - start > room) this.bodyTruncated = true;
    const kept = bytes.slice(start, Math.min(end, start + room));
    if (kept.length === 0) return;
    this.bodyChunks.push(kept);
    this.bodyBytes += kept.length;
  }

  body(): Uint8Array {
    return this.bodyChunks.length === 1 ? (this.bodyChunks[0] as Uint8Array) : Buffer.concat(this.bodyChunks);
  }
}

export class Http1Client {
  readonly options: Http1ClientOptions;
  private readonly targets = new Map<string, Target>();
  private readonly pools = new Map<string, OriginPool>();
  private readonly connections = new Set<Connection>();
  /** Origins with requests waiting because `connectionsMax` was reached (not their own bound). */
  private readonly starved: OriginPool[] = [];
  private readonly sweepMs: number;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private opened = 0;
  private retried = 0;
  private readonly handlers: SocketHandler<Connection>;

  constructor(options: Partial<Http1ClientOptions> = {}) {
    this.options = { ...defaultHttp1ClientOptions, ...options };
    const { idleTimeoutMs, connectTimeoutMs, responseTimeoutMs } = this.options;
    // One timer checks every deadline: cheaper than a timer per request, and late by at most this.
    this.sweepMs = Math.min(
      250,
      Math.max(5, Math.min(idleTimeoutMs, connectTimeoutMs, responseTimeoutMs) / 8),
    );
    this.handlers = this.socketHandlers();
  }

  /** Sends one request; rejects with an Http1Error, a connect error (code ECONNREFUSED...) or the signal's reason. */
  request(request: Http1Request): Promise<Http1Response> {
    const { url, signal, timeoutMs } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (timeoutMs !== undefined && timeoutMs <= 0) {
      return Promise.reject(new Http1TimeoutError("CONNECT_TIMEOUT", `timeoutMs ${timeoutMs} left no time`));
    }
    const target = this.targetOf(url);
    const pool = this.poolFor(target, request.address);
    const method = request.method ?? "POST";
    const { body } = request;
    const bodyBytes =
      body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.length;
    const head = requestHead(
      method,
      target.pathAndQuery,
      target.host,
      request.headers ?? {},
      body === undefined ? undefined : bodyBytes,
    );
    // One write per request; the head is ASCII, so its length is its byte count.
    const payload =
      body === undefined || typeof body === "string"
        ? head + (body ?? "")
        : Buffer.concat([Buffer.from(head, "latin1"), body]);
    const { promise, resolve, reject } = Promise.withResolvers<Http1Response>();
    const exchange = new Exchange(
      pool,
      payload,
      head.length + bodyBytes,
      method === "HEAD",
      resolve,
      reject,
      signal,
    );
    if (timeoutMs !== undefined) exchange.deadlineMs = performance.now() + timeoutMs;
    if (signal !== undefined) {
      exchange.onAbort = () => this.abort(exchange, signal.reason);
      signal.addEventListener("abort", exchange.onAbort, { once: true });
    }
    this.dispatch(exchange, false);
    return promise;
  }

  stats(): Http1ClientStats {
    let waiting = 0;
    let idle = 0;
    for (const pool of this.pools.values()) {
      waiting += pool.waiting.length;
      idle += pool.idle.length;
    }
    const { opened, retried } = this;
    return { connections: this.connections.size, idle, waiting, opened, retried };
  }

  /** Closes every connection; requests in flight or waiting fail with CONNECTION_CLOSED. */
  close(): void {
    const closing = new Http1Error("CONNECTION_CLOSED", "the client was closed");
    for (const pool of this.pools.values()) {
      for (const exchange of pool.waiting.splice(0)) this.settle(exchange, closing);
    }
    for (const connection of [...this.connections]) this.failExchange(connection, closing);
    this.starved.length = 0;
  }

  /** The URL's parts the client uses, parsed once per URL text (URL getters are not free). */
  private targetOf(url: URL): Target {
    const href = url.href;
    let target = this.targets.get(href);
    if (target === undefined) {
      const secure = url.protocol === "https:";
      if (!secure && url.protocol !== "http:") throw new TypeError(`not an http(s) URL: ${url.protocol}`);
      const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
      const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port);
      // Certificates name hosts; an IP literal URL is verified against the address itself.
      const serverName = secure && isIP(hostname) === 0 ? hostname : "";
      target = {
        secure,
        hostname,
        port,
        serverName,
        host: url.host,
        pathAndQuery: url.pathname + url.search,
        originKey: `${url.protocol}${port}|${serverName}|`,
        lastPool: undefined,
      };
      if (this.targets.size >= targetsCachedMax) this.targets.clear();
      this.targets.set(href, target);
    }
    return target;
  }

  private poolFor(target: Target, address: string | undefined): OriginPool {
    const connectTo = address ?? target.hostname;
    const last = target.lastPool;
    if (last?.hostname === connectTo && this.pools.get(last.key) === last) return last;
    const key = target.originKey + connectTo;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      if (address !== undefined && isIP(address) === 0) throw new TypeError(`not an IP address: ${address}`);
      const { secure, serverName, port } = target;
      const { ca } = this.options;
      const tls =
        !secure || (serverName === "" && ca === undefined)
          ? secure || undefined
          : { ...(serverName === "" ? {} : { serverName }), ...(ca === undefined ? {} : { ca }) };
      pool = { key, hostname: connectTo, port, tls, open: 0, idle: [], waiting: [] };
      this.pools.set(key, pool);
    }
    target.lastPool = pool;
    return pool;
  }

  /** Starts an exchange on an idle connection, a new one, or queues it; `preferNew` for the retry. */
  private dispatch(exchange: Exchange, preferNew: boolean): void {
    const { pool } = exchange;
    const { connectionsPerOriginMax, waitingPerOriginMax } = this.options;
    if (!preferNew && pool.idle.length > 0) {
      this.start(pool.idle.pop() as Connection, exchange);
    } else if (pool.open < connectionsPerOriginMax && this.makeRoom()) {
      this.connect(pool, exchange);
    } else if (pool.idle.length > 0) {
      this.start(pool.idle.pop() as Connection, exchange);
    } else if (pool.waiting.length >= waitingPerOriginMax) {
      const message = `${waitingPerOriginMax} requests already wait for ${pool.hostname}:${pool.port}`;
      this.settle(exchange, new Http1Error("QUEUE_FULL", message));
    } else {
      pool.waiting.push(exchange);
      if (pool.open < connectionsPerOriginMax && !this.starved.includes(pool)) this.starved.push(pool);
    }
  }

  /**
   * True when a connection may be opened, after closing the one idle longest if need be (without
   * refilling from the slot it frees: that slot is the caller's). A scan, but only at connectionsMax.
   */
  private makeRoom(): boolean {
    if (this.connections.size < this.options.connectionsMax) return true;
    let oldest: Connection | undefined;
    for (const connection of this.connections) {
      // Idle deadlines are set when idling starts, so the earliest is the longest idle.
      if (connection.state === "idle" && connection.deadlineMs < (oldest?.deadlineMs ?? Infinity)) {
        oldest = connection;
      }
    }
    if (oldest === undefined) return false;
    this.forget(oldest);
    oldest.socket?.end();
    this.dropIfUnused(oldest.pool);
    return true;
  }

  private connect(pool: OriginPool, exchange: Exchange): void {
    const connection = new Connection(
      pool,
      this.options.bodyBytesMax,
      Math.min(performance.now() + this.options.connectTimeoutMs, exchange.deadlineMs),
    );
    connection.exchange = exchange;
    exchange.connection = connection;
    exchange.onReusedConnection = false;
    this.connections.add(connection);
    pool.open++;
    this.opened++;
    this.startSweeping();
    const { hostname, port, tls } = pool;
    // Failures arrive through connectError; the promise adds nothing.
    void Bun.connect({ hostname, port, tls, data: connection, socket: this.handlers }).catch(() => {});
  }

  /** The connection is open (and, for TLS, verified): send what it was opened for. */
  private ready(connection: Connection): void {
    const exchange = connection.exchange;
    if (connection.state === "connecting" && exchange !== undefined) this.start(connection, exchange);
  }

  private start(connection: Connection, exchange: Exchange): void {
    const socket = connection.socket as Socket<Connection>;
    if (connection.state === "idle") socket.ref();
    connection.state = "busy";
    connection.exchange = exchange;
    connection.deadlineMs = Math.min(performance.now() + this.options.responseTimeoutMs, exchange.deadlineMs);
    exchange.connection = connection;
    exchange.onReusedConnection = connection.exchangesDone > 0;
    const written = socket.write(exchange.payload);
    if (written < exchange.payloadBytes) {
      const payload = exchange.payload;
      const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
      connection.unsent = bytes.subarray(Math.max(written, 0));
    }
  }

  private receive(connection: Connection, chunk: Uint8Array): void {
    const exchange = connection.exchange;
    // Bytes nobody asked for (a server talking on an idle connection): its framing cannot be trusted.
    if (exchange === undefined || connection.state !== "busy") {
      this.closeQuietly(connection);
      return;
    }
    connection.responseStarted = true;
    try {
      this.readResponse(connection, exchange, chunk);
    } catch (error) {
      this.failExchange(connection, error);
    }
  }

  private readResponse(connection: Connection, exchange: Exchange, chunk: Uint8Array): void {
    let bytes = chunk;
    let offset = 0;
    if (connection.head === undefined) {
      if (connection.pendingHead !== undefined) {
        bytes = Buffer.concat([connection.pendingHead, chunk]);
        connection.pendingHead = undefined;
      }
      for (;;) {
        const rest = offset === 0 ? bytes : bytes.subarray(offset);
        const parsed = parseResponseHead(rest, this.options.headerBytesMax, exchange.noBody);
        if (!parsed.complete) {
          connection.pendingHead = rest.slice();
          return;
        }
        offset += parsed.headBytes;
        const { head } = parsed;
        if (head.status >= 200) {
          this.startBody(connection, head);
          break;
        }
        if (head.status === 101 || ++connection.interimHeads > interimHeadsMax) {
          throw new Http1Error("UNEXPECTED_STATUS", `status ${head.status} before the final response`);
        }
      }
    }
    this.readBody(connection, bytes, offset);
  }

  private startBody(connection: Connection, head: ResponseHead): void {
    connection.head = head;
    if (head.framing.kind === "length") connection.bodyRemaining = head.framing.length;
    if (head.framing.kind === "chunked") connection.chunked = new ChunkedDecoder();
  }

  private readBody(connection: Connection, bytes: Uint8Array, offset: number): void {
    const framing = (connection.head as ResponseHead).framing;
    let end = bytes.length;
    switch (framing.kind) {
      case "none":
        end = offset;
        break;
      case "length": {
        const take = Math.min(connection.bodyRemaining, bytes.length - offset);
        if (take > 0) connection.keepBody(bytes, offset, offset + take);
        connection.bodyRemaining -= take;
        end = connection.bodyRemaining === 0 ? offset + take : -1;
        break;
      }
      case "chunked":
        end = (connection.chunked as ChunkedDecoder).push(bytes, offset, connection.keep);
        break;
      case "until-close":
        if (offset < bytes.length) connection.keepBody(bytes, offset, bytes.length);
        end = -1;
        break;
    }
    if (connection.bodyTruncated) {
      this.complete(connection); // the rest stays unread: the connection is closed
    } else if (end >= 0) {
      // Nothing was asked for after this response: more bytes mean its framing lied.
      if (end < bytes.length) {
        throw new Http1Error("EXCESS_DATA", `${bytes.length - end} bytes after the end of the response body`);
      }
      this.complete(connection);
    }
  }

  /** The response is read (or cut at bodyBytesMax): settle, then reuse or close the connection. */
  private complete(connection: Connection): void {
    const exchange = connection.exchange as Exchange;
    const head = connection.head as ResponseHead;
    const response: Http1Response = {
      status: head.status,
      headers: head.headers,
      body: connection.body(),
      bodyTruncated: connection.bodyTruncated,
    };
    const reusable = head.keepAlive && !connection.bodyTruncated && connection.unsent === undefined;
    connection.exchangesDone++;
    connection.exchange = undefined;
    connection.resetResponse();
    if (connection.state === "busy") {
      if (reusable) this.release(connection);
      else this.closeQuietly(connection);
    }
    this.settle(exchange, undefined, response);
  }

  /** A free connection: to the next waiter of its origin, closed for a starved origin, or idle. */
  private release(connection: Connection): void {
    const { pool } = connection;
    const next = pool.waiting.shift();
    if (next !== undefined) {
      this.start(connection, next);
    } else if (this.pruneStarved()) {
      this.closeQuietly(connection);
    } else {
      connection.state = "idle";
      connection.deadlineMs = performance.now() + this.options.idleTimeoutMs;
      pool.idle.push(connection);
      // As with fetch's pool, idle connections do not keep the process alive; busy ones do.
      connection.socket?.unref();
    }
  }

  /** The socket closed (server, network, or after our end()). */
  private closed(connection: Connection, error: Error | undefined): void {
    if (connection.state === "closed") return;
    const state = connection.state;
    const exchange = connection.exchange;
    this.forget(connection);
    if (exchange !== undefined) {
      if (connection.head?.framing.kind === "until-close" && error === undefined) {
        this.complete(connection);
      } else if (
        state === "busy" &&
        !connection.responseStarted &&
        exchange.onReusedConnection &&
        !exchange.retried
      ) {
        // The server closed the connection while it sat idle, before our request reached it.
        exchange.retried = true;
        this.retried++;
        exchange.connection = undefined;
        this.dispatch(exchange, true);
      } else {
        this.settle(exchange, closedError(connection, state, error));
      }
    }
    this.refill(connection.pool);
  }

  /** Bun.connect could not open the socket: the error keeps its code (ECONNREFUSED...). */
  private connectFailed(connection: Connection, error: Error): void {
    if (connection.state === "closed") return;
    const exchange = connection.exchange;
    this.forget(connection);
    if (exchange !== undefined) this.settle(exchange, error);
    this.refill(connection.pool);
  }

  /** Fails the connection's request (if any) and closes the connection at once. */
  private failExchange(connection: Connection, error: unknown): void {
    const exchange = connection.exchange;
    connection.exchange = undefined;
    if (connection.state !== "closed") {
      this.forget(connection);
      connection.socket?.terminate();
      this.refill(connection.pool);
    }
    if (exchange !== undefined) this.settle(exchange, error);
  }

  private closeQuietly(connection: Connection): void {
    if (connection.state === "closed") return;
    this.forget(connection);
    connection.socket?.end();
    this.refill(connection.pool);
  }

  /** Bookkeeping for a connection that is gone; no scheduling. */
  private forget(connection: Connection): void {
    const { pool } = connection;
    if (connection.state === "idle") pool.idle.splice(pool.idle.indexOf(connection), 1);
    connection.state = "closed";
    this.connections.delete(connection);
    pool.open--;
    if (this.connections.size === 0) this.stopSweeping();
  }

  /** A connection slot is free: open one for a waiting request, this origin's first, then a starved one's. */
  private refill(pool: OriginPool): void {
    if (pool.waiting.length > 0 && pool.open < this.options.connectionsPerOriginMax && this.makeRoom()) {
      this.connect(pool, pool.waiting.shift() as Exchange);
    }
    while (this.pruneStarved() && this.makeRoom()) {
      const starved = this.starved[0] as OriginPool;
      this.connect(starved, starved.waiting.shift() as Exchange);
    }
    this.dropIfUnused(pool);
  }

  private dropIfUnused(pool: OriginPool): void {
    if (pool.open === 0 && pool.waiting.length === 0) this.pools.delete(pool.key);
  }

  /** Drops starved origins that no longer wait or that reached their own bound; true if one is left. */
  private pruneStarved(): boolean {
    const { connectionsPerOriginMax } = this.options;
    while (this.starved.length > 0) {
      const first = this.starved[0] as OriginPool;
      if (first.waiting.length > 0 && first.open < connectionsPerOriginMax) return true;
      this.starved.shift();
    }
    return false;
  }

  private abort(exchange: Exchange, reason: unknown): void {
    if (exchange.settled) return;
    const connection = exchange.connection;
    if (connection?.exchange === exchange) {
      this.failExchange(connection, reason);
    } else {
      const { waiting } = exchange.pool;
      const index = waiting.indexOf(exchange);
      if (index >= 0) waiting.splice(index, 1);
      this.settle(exchange, reason);
    }
  }

  private settle(exchange: Exchange, error: unknown, response?: Http1Response): void {
    if (exchange.settled) return;
    exchange.settled = true;
    if (exchange.onAbort !== undefined) exchange.signal?.removeEventListener("abort", exchange.onAbort);
    if (response !== undefined) exchange.resolve(response);
    else exchange.reject(error);
  }

  private startSweeping(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
  }

  private stopSweeping(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Closes idle connections past their time and fails requests past their connect or response timeout. */
  private sweep(): void {
    const nowMs = performance.now();
    for (const connection of this.connections) {
      if (connection.deadlineMs > nowMs) continue;
      const { pool, state, exchange } = connection;
      if (state === "idle") {
        this.closeQuietly(connection);
      } else if (exchange !== undefined && exchange.deadlineMs <= nowMs) {
        const code = state === "connecting" ? "CONNECT_TIMEOUT" : "RESPONSE_TIMEOUT";
        this.failExchange(connection, new Http1TimeoutError(code, "the request's timeoutMs passed"));
      } else if (state === "connecting") {
        const message = `no connection to ${pool.hostname}:${pool.port} within ${this.options.connectTimeoutMs} ms`;
        this.failExchange(connection, new Http1TimeoutError("CONNECT_TIMEOUT", message));
      } else {
        const message = `no complete response within ${this.options.responseTimeoutMs} ms`;
        this.failExchange(connection, new Http1TimeoutError("RESPONSE_TIMEOUT", message));
      }
    }
    for (const pool of this.pools.values()) {
      if (pool.waiting.some((exchange) => exchange.deadlineMs <= nowMs)) this.expireWaiting(pool, nowMs);
    }
  }

  private expireWaiting(pool: OriginPool, nowMs: number): void {
    const expired = pool.waiting.filter((exchange) => exchange.deadlineMs <= nowMs);
    pool.waiting = pool.waiting.filter((exchange) => exchange.deadlineMs > nowMs);
    const message = "the request's timeoutMs passed while it waited for a connection";
    for (const exchange of expired) this.settle(exchange, new Http1TimeoutError("CONNECT_TIMEOUT", message));
  }

  private socketHandlers(): SocketHandler<Connection> {
    return {
      open: (socket) => {
        const connection = socket.data;
        connection.socket = socket;
        // Timed out or aborted while the TCP connect was under way.
        if (connection.state === "closed") socket.terminate();
        else if (connection.pool.tls === undefined) this.ready(connection);
      },
      handshake: (socket, _authorized, authorizationError) => {
        const connection = socket.data;
        if (authorizationError === null) return this.ready(connection);
        const code = (authorizationError as { code?: string }).code ?? "unknown";
        const { hostname, port, tls } = connection.pool;
        const name = typeof tls === "object" && tls.serverName !== undefined ? ` as ${tls.serverName}` : "";
        const message = `with ${hostname}:${port}${name} (${code}): ${authorizationError.message}`;
        this.failExchange(
          connection,
          new Http1Error("TLS_HANDSHAKE_FAILED", message, { cause: authorizationError }),
        );
      },
      data: (socket, chunk) => this.receive(socket.data, chunk),
      drain: (socket) => {
        const connection = socket.data;
        const unsent = connection.unsent;
        if (unsent === undefined) return;
        const written = socket.write(unsent);
        connection.unsent = written >= unsent.length ? undefined : unsent.subarray(Math.max(written, 0));
      },
      close: (socket, error) => this.closed(socket.data, error),
      // A TLS session that failed after the handshake: the same as a close with that error.
      error: (socket, error) => {
        this.closed(socket.data, error);
        socket.terminate();
      },
      connectError: (socket, error) => this.connectFailed(socket.data, error),
    };
  }
}

function closedError(connection: Connection, state: ConnectionState, cause: Error | undefined): Http1Error {
  const code = (cause as { code?: string } | undefined)?.code;
  const why = code === undefined ? "" : ` (${code})`;
  const head = connection.head;
  if (head?.framing.kind === "length") {
    const received = head.framing.length - connection.bodyRemaining;
    return new Http1Error(
      "TRUNCATED_BODY",
      `connection closed${why} after ${received} of ${head.framing.length} body bytes`,
      { cause },
    );
  }
  if (head !== undefined) {
    return new Http1Error("TRUNCATED_BODY", `connection closed${why} inside the ${head.framing.kind} body`, {
      cause,
    });
  }
  const when =
    state === "connecting"
      ? "before it was ready"
      : connection.responseStarted
        ? "inside the response head"
        : "before any response byte";
  return new Http1Error("CONNECTION_CLOSED", `connection closed${why} ${when}`, { cause });
}
