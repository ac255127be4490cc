/**
 * The pipeline bench's webhook sink, run as its own process (`bun bench/pipeline/sink.ts`) so that its
 * CPU is measured apart from the producer and its clock is not stalled by the producer's loop. It must
 * cost less than the pipeline it measures, so webhooks go to a raw Bun.listen HTTP/1.1 responder
 * (support/request-framer.ts: head to the blank line, content-length body, `200 ok` with keep-alive,
 * all answers to one read in one write), and control requests to a Bun.serve of their own.
 *
 * Each webhook POST is answered 200 at once. The payload's alertId is `<run>-<phase>-<index>` (see
 * alerts.ts); per phase the sink keeps, per index, the number of deliveries, the first delivery's
 * time and the payload's eventTime, both read from the body without parsing all of it. A group
 * message (rules with group_by: Alertmanager's document, src/core/group-payload.ts) counts every id of
 * its `alertIds`, with eventTime -1 (the bench takes the produced one), and is one request. Control
 * (loopback, from the bench only):
 *
 *   POST /phase/<phase>?alerts=N   start recording phase <phase> with N alerts
 *   GET  /progress/<phase>         {"delivered": distinct alerts delivered, "requests": N, "unknown": N}
 *   GET  /report/<phase>           binary: Float64 deliveredAtMs[N], Float64 eventMs[N], Uint16 counts[N]
 *
 * Prints `{"port": webhook port, "controlPort": N}` on stdout once it listens.
 */
import { okAnswer, RequestFramer } from "../support/request-framer.ts";

interface PhaseRecord {
  alerts: number;
  deliveredAtMs: Float64Array;
  eventMs: Float64Array;
  counts: Uint16Array;
  distinct: number;
  requests: number;
}

const phases = new Map<string, PhaseRecord>();
let unknown = 0;
let badBodies = 0;

const alertIdField = Buffer.from('"alertId":"');
const eventTimeField = Buffer.from('"eventTime":"');
const quote = 0x22;

/**
 * The string value of `field`'s first (or last) occurrence in `body`, up to the next quote: right for
 * values without escapes, as alert ids and ISO times are.
 */
function stringField(body: Buffer, field: Buffer, last = false): string | undefined {
  const at = last ? body.lastIndexOf(field) : body.indexOf(field);
  if (at < 0) return undefined;
  const start = at + field.length;
  const end = body.indexOf(quote, start);
  return end < 0 ? undefined : body.toString("latin1", start, end);
}

const groupPrefix = Buffer.from('{"version":"4"');
const alertIdsField = Buffer.from('"alertIds":[');

function record(body: Buffer, nowMs: number): void {
  if (body.subarray(0, groupPrefix.length).equals(groupPrefix)) {
    recordGroup(body, nowMs);
    return;
  }
  // The payload's fields in webhookPayload's order: alertId comes before the free-form context,
  // eventTime after it.
  const alertId = stringField(body, alertIdField);
  const eventTime = stringField(body, eventTimeField, true);
  if (alertId === undefined || eventTime === undefined) {
    badBodies++;
    return;
  }
  const phase = recordAlert(alertId, nowMs, Date.parse(eventTime));
  if (phase !== undefined) phase.requests++;
}

/** alertIds is the document's last field: ids without escapes, up to its closing bracket. */
function recordGroup(body: Buffer, nowMs: number): void {
  const at = body.lastIndexOf(alertIdsField);
  const end = at < 0 ? -1 : body.indexOf(0x5d, at);
  if (end < 0) {
    badBodies++;
    return;
  }
  const list = body.toString("latin1", at + alertIdsField.length, end);
  let phase: PhaseRecord | undefined;
  for (const quoted of list.split(",")) phase = recordAlert(quoted.slice(1, -1), nowMs, -1) ?? phase;
  if (phase !== undefined) phase.requests++;
}

/** Counts one delivery of `alertId`; returns its phase, or undefined for an id of no phase. */
function recordAlert(alertId: string, nowMs: number, eventMs: number): PhaseRecord | undefined {
  // <run>-<phase>-<index>: the run may contain dashes, the phase and index do not.
  const lastDash = alertId.lastIndexOf("-");
  const phaseDash = alertId.lastIndexOf("-", lastDash - 1);
  const phase = phases.get(alertId.slice(phaseDash + 1, lastDash));
  const index = Number(alertId.slice(lastDash + 1));
  if (phase === undefined || !Number.isInteger(index) || index < 0 || index >= phase.alerts) {
    unknown++;
    return undefined;
  }
  const seen = phase.counts[index] as number;
  phase.counts[index] = seen + 1;
  if (seen === 0) {
    phase.distinct++;
    phase.deliveredAtMs[index] = nowMs;
    phase.eventMs[index] = eventMs;
  }
  return phase;
}

const hooks = Bun.listen<RequestFramer>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(socket) {
      socket.data = new RequestFramer(true);
    },
    data(socket, chunk) {
      const nowMs = Date.now();
      const answers = socket.data.push(chunk, (body) => record(body, nowMs));
      if (answers > 0) socket.write(answers === 1 ? okAnswer : okAnswer.repeat(answers));
    },
    error(_, error) {
      console.error(`pipeline sink: ${error.message}`);
      process.exit(1);
    },
  },
});

const control = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    const [, action, name = ""] = path.split("/");
    if (request.method === "POST" && action === "phase") {
      const alerts = Number(url.searchParams.get("alerts"));
      phases.set(name, {
        alerts,
        deliveredAtMs: new Float64Array(alerts),
        eventMs: new Float64Array(alerts),
        counts: new Uint16Array(alerts),
        distinct: 0,
        requests: 0,
      });
      return Response.json({ ok: true });
    }
    const phase = phases.get(name);
    if (phase === undefined) return new Response(`no phase ${name}`, { status: 404 });
    if (action === "progress")
      return Response.json({ delivered: phase.distinct, requests: phase.requests, unknown, badBodies });
    if (action === "report") {
      const bytes = new Uint8Array(phase.alerts * 18);
      bytes.set(new Uint8Array(phase.deliveredAtMs.buffer), 0);
      bytes.set(new Uint8Array(phase.eventMs.buffer), phase.alerts * 8);
      bytes.set(new Uint8Array(phase.counts.buffer), phase.alerts * 16);
      return new Response(bytes);
    }
    return new Response("not found", { status: 404 });
  },
});

console.log(JSON.stringify({ port: hooks.port, controlPort: control.port }));
process.on("SIGTERM", () => {
  hooks.stop(true);
  void control.stop(true).then(() => process.exit(0));
});
