/**
 * The pipeline bench's webhook sink, run as its own process (`bun bench/pipeline/sink.ts`) so that its
 * CPU is measured apart from the producer and its clock is not stalled by the producer's loop.
 *
 * Webhook POSTs to /hook/<client id> answer 200 at once. The payload's alertId is `<run>-<phase>-<index>`
 * (see alerts.ts); per phase the sink keeps, per index, the number of deliveries, the first delivery's
 * time and the payload's eventTime. Control (loopback, from the bench only):
 *
 *   POST /phase/<phase>?alerts=N   start recording phase <phase> with N alerts
 *   GET  /progress/<phase>         {"delivered": distinct alerts delivered, "requests": N, "unknown": N}
 *   GET  /report/<phase>           binary: Float64 deliveredAtMs[N], Float64 eventMs[N], Uint16 counts[N]
 *
 * Prints `{"port": N}` on stdout once it listens.
 */

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

function record(body: string, nowMs: number): void {
  let payload: { alertId?: unknown; eventTime?: unknown };
  try {
    payload = JSON.parse(body);
  } catch {
    badBodies++;
    return;
  }
  const alertId = typeof payload.alertId === "string" ? payload.alertId : "";
  // <run>-<phase>-<index>: the run may contain dashes, the phase and index do not.
  const lastDash = alertId.lastIndexOf("-");
  const phaseDash = alertId.lastIndexOf("-", lastDash - 1);
  const phase = phases.get(alertId.slice(phaseDash + 1, lastDash));
  const index = Number(alertId.slice(lastDash + 1));
  if (phase === undefined || !Number.isInteger(index) || index < 0 || index >= phase.alerts) {
    unknown++;
    return;
  }
  phase.requests++;
  const seen = phase.counts[index] as number;
  phase.counts[index] = seen + 1;
  if (seen === 0) {
    phase.distinct++;
    phase.deliveredAtMs[index] = nowMs;
    phase.eventMs[index] = typeof payload.eventTime === "string" ? Date.parse(payload.eventTime) : Number.NaN;
  }
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    if (request.method === "POST" && path.startsWith("/hook/")) {
      const body = await request.text();
      record(body, Date.now());
      return new Response("ok");
    }
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

console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", () => {
  void server.stop(true).then(() => process.exit(0));
});
