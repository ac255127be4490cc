/**
 * The demo's two receivers, standing in for a client's systems: a webhook sink (HTTP) and an SMTP
 * sink. Each prints one short line per delivery, so you can watch notifications arrive.
 */
import { SMTPServer } from "smtp-server";
import type { LiveTerminal } from "./terminal.ts";

export interface Sink {
  name: string;
  /** Deliveries (webhook calls, mails) received since the start. */
  received(): number;
  stop(): Promise<void>;
}

const clock = () => new Date().toISOString().slice(11, 23); // HH:MM:SS.mmm, UTC like the stage logs

/**
 * Webhook endpoints point at http://127.0.0.1:<port>/hook/<client name>, so the client's name can be
 * printed without a lookup. Answers 200 to every POST.
 */
export function startWebhookSink(port: number, terminal: LiveTerminal): Sink {
  let count = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(request) {
      const client = new URL(request.url).pathname.replace(/^\/hook\//, "");
      const payload = (await request.json().catch(() => ({}))) as Record<string, unknown>;
      count++;
      const key = request.headers.get("idempotency-key") ?? "-";
      terminal.line(
        `${clock()}  webhook  ${client.padEnd(8)} ${String(payload.severity).padEnd(8)} ` +
          `${String(payload.name).padEnd(13)} alert ${payload.alertId}  key ${key}`,
      );
      return new Response("ok");
    },
  });
  return {
    name: "webhook-sink",
    received: () => count,
    stop: () => server.stop(true),
  };
}

/** Accepts any mail without authentication or TLS (the sender uses SMTP_SECURITY=none on loopback). */
export async function startSmtpSink(port: number, terminal: LiveTerminal): Promise<Sink> {
  let count = 0;
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    closeTimeout: 2000, // bounds stop(): connections still open then are cut
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        count++;
        const recipients = session.envelope.rcptTo.map((rcpt) => rcpt.address).join(",");
        terminal.line(
          `${clock()}  mail     ${recipients}  ${subjectOf(Buffer.concat(chunks).toString("utf8"))}`,
        );
        callback(null, `queued as demo-${count}`);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    name: "smtp-sink",
    received: () => count,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The Subject header of a raw message, with folded continuation lines joined. */
function subjectOf(raw: string): string {
  const headers = raw.split(/\r?\n\r?\n/, 1)[0] ?? "";
  const match = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(headers);
  return match?.[1]?.replace(/\r?\n[ \t]+/g, " ") ?? "(no subject)";
}
