/** A recording HTTP(S) receiver on loopback (port 0) whose answers each test scripts. */
import type { Server, TLSOptions } from "bun";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Headers;
  body: string;
  /** Client port: requests sharing one arrived on the same (kept-alive) connection. */
  remotePort: number;
}

export type Responder = (request: ReceivedRequest) => Response | Promise<Response>;

export class HttpSink {
  readonly received: ReceivedRequest[] = [];
  inFlight = 0;
  inFlightMax = 0;
  private readonly server: Server<undefined>;

  constructor(
    private respond: Responder = () => new Response("ok"),
    tls?: TLSOptions,
  ) {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls,
      fetch: async (request, server) => {
        this.inFlight += 1;
        this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
        try {
          const received: ReceivedRequest = {
            method: request.method,
            path: new URL(request.url).pathname,
            headers: request.headers,
            body: await request.text(),
            remotePort: server.requestIP(request)?.port ?? -1,
          };
          this.received.push(received);
          return await this.respond(received);
        } finally {
          this.inFlight -= 1;
        }
      },
    });
  }

  /** `host` only names the sink: whatever it is, a pinned transport must connect to 127.0.0.1. */
  url(path = "/hook", host = "127.0.0.1"): string {
    return `${this.server.url.protocol}//${host}:${this.server.port}${path}`;
  }

  answer(respond: Responder): void {
    this.respond = respond;
  }

  connectionsSeen(): number {
    return new Set(this.received.map((request) => request.remotePort)).size;
  }

  stop(): Promise<void> {
    return this.server.stop(true);
  }
}
