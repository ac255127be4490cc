/**
 * Webhook client CPU: `./dev bench webhook-client [requests] [in-flight levels]` (default 10000
 * requests per run at 1,16,64,256 in flight, three runs of each; about a minute; needs no Kafka or
 * Postgres, so `bun bench/webhook-client.ts` runs it as well).
 *
 * The same signed webhook POST (the webhook channel's payload and headers) goes, `requests` times
 * per run and a fixed number in flight, through three clients in this process, each with a 10 s
 * timeout per request:
 *
 *   fetch          Bun's fetch as src/channels/http.ts calls it today (redirect "manual", the body
 *                  read whole, an AbortSignal.timeout per delivery);
 *   http1 signal   src/channels/http1-client.ts, address pinned as the SSRF guard does, the same
 *                  AbortSignal.timeout;
 *   http1 timeout  the same with the request's timeoutMs instead of a signal (checked by the
 *                  client's one sweep timer): what http.ts would pass after the switch.
 *
 * The receiver is bench/support/raw-sink.ts in its own process (a raw Bun.listen responder,
 * keep-alive, `200 ok`), so its CPU is reported apart. Per run: requests/s, this process's CPU per
 * request (process.cpuUsage: the client's cost, the figure the target is about), the sink's CPU per
 * request, and the connections the sink saw opened. At each level the clients take turns, three
 * rounds, the order rotating every round; the table gives medians (and the CPU's range). Each client
 * first warms up with a run that is not counted.
 * Target (issue 18): fetch's CPU per request >= 2 x http1's.
 */
import { Http1Client } from "../src/channels/http1-client.ts";
import type { Notification } from "../src/channels/types.ts";
import { webhookPayload, webhookSignature } from "../src/channels/webhook.ts";
import { finish, fmt, loadText, table, verdict } from "./support/common.ts";
import { RawSinkProcess } from "./support/raw-sink-process.ts";

const requestCount = Number(process.argv[2] ?? 10_000);
const rounds = 3;
const levels = (process.argv[3] ?? "1,16,64,256").split(",").map(Number);
const warmUpCount = 2000;
const timeoutMs = 10_000;
const targetRatio = 2;

type Post = () => Promise<number>;

interface RunFigures {
  client: string;
  inFlight: number;
  requests: number;
  failed: number;
  requestsPerSecond: number;
  clientCpuUsPerRequest: number;
  sinkCpuUsPerRequest: number;
  connectionsOpened: number;
}

/** `count` posts, `inFlight` at a time; what they cost this process and the sink. */
async function run(sink: RawSinkProcess, client: string, post: Post, count: number, inFlight: number) {
  const before = await sink.stats();
  const startedMs = performance.now();
  const cpuBefore = process.cpuUsage();
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      try {
        if ((await post()) !== 200) failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - startedMs) / 1000;
  const after = await sink.stats();
  const requests = after.requests - before.requests;
  return {
    client,
    inFlight,
    requests,
    failed,
    requestsPerSecond: count / seconds,
    clientCpuUsPerRequest: (cpu.user + cpu.system) / count,
    sinkCpuUsPerRequest: (after.cpuUs - before.cpuUs) / Math.max(requests, 1),
    connectionsOpened: after.connectionsOpened - before.connectionsOpened,
  } satisfies RunFigures;
}

/** A webhook as the sender posts it: the channel's payload, signed. */
function webhook(): { body: string; headers: Record<string, string> } {
  const notification: Notification = {
    id: "1234567",
    clientId: crypto.randomUUID(),
    alertId: "bench-alert-000001",
    severity: "HIGH",
    source: "bench",
    name: "disk_usage_high",
    context: { host: "db-01", mount: "/var/lib/postgresql", used_percent: 93.4 },
    ruleIds: [crypto.randomUUID()],
    eventTime: new Date(),
  };
  const body = JSON.stringify(webhookPayload(notification));
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers = {
    "content-type": "application/json",
    "idempotency-key": notification.id,
    "x-alerting-timestamp": timestamp,
    "x-alerting-signature": `sha256=${webhookSignature("bench-secret", timestamp, body)}`,
  };
  return { body, headers };
}

async function main(): Promise<void> {
  const sink = new RawSinkProcess();
  const port = await sink.port();
  const url = `http://127.0.0.1:${port}/hook`;
  const { body, headers } = webhook();
  console.log(
    `webhook client bench: ${fmt(requestCount)} POSTs of ${body.length} bytes per run, in flight ${levels.join(", ")}; ` +
      `raw sink pid ${sink.pid} on port ${port}; load average ${loadText()}`,
  );

  const fetchPost: Post = async () => {
    const signal = AbortSignal.timeout(timeoutMs);
    const response = await fetch(url, { method: "POST", body, headers, redirect: "manual", signal });
    await response.arrayBuffer();
    return response.status;
  };
  const http1 = new Http1Client();
  const target = new URL(url);
  const request = { url: target, address: "127.0.0.1", body, headers };
  const http1SignalPost: Post = async () =>
    (await http1.request({ ...request, signal: AbortSignal.timeout(timeoutMs) })).status;
  const http1TimeoutPost: Post = async () => (await http1.request({ ...request, timeoutMs })).status;
  const clients: Array<[string, Post]> = [
    ["fetch", fetchPost],
    ["http1 signal", http1SignalPost],
    ["http1 timeout", http1TimeoutPost],
  ];

  for (const [name, post] of clients) await run(sink, name, post, warmUpCount, 64);
  const runs: RunFigures[] = [];
  let turn = 0;
  for (const inFlight of levels) {
    for (let round = 0; round < rounds; round++, turn++) {
      const rotated = [...clients.slice(turn % clients.length), ...clients.slice(0, turn % clients.length)];
      for (const [name, post] of rotated) runs.push(await run(sink, name, post, requestCount, inFlight));
    }
  }
  http1.close();
  await sink.stop();

  const rows: string[][] = [];
  const ratios: Record<string, number> = {};
  for (const inFlight of levels) {
    const figuresOf = (client: string) =>
      summarise(runs.filter((r) => r.inFlight === inFlight && r.client === client));
    const fetchCpuUs = figuresOf("fetch").clientCpuUsPerRequest;
    for (const [client] of clients) {
      const figures = figuresOf(client);
      const ratio = fetchCpuUs / figures.clientCpuUsPerRequest;
      if (client !== "fetch") ratios[`${client} at ${inFlight}`] = ratio;
      rows.push([
        String(inFlight),
        client,
        fmt(figures.requestsPerSecond),
        `${fmt(figures.clientCpuUsPerRequest, 1)} (${figures.clientCpuRange})`,
        fmt(figures.sinkCpuUsPerRequest, 1),
        fmt(figures.connectionsOpened),
        fmt(figures.failedOrLost),
        client === "fetch" ? "" : `${fmt(ratio, 2)} (${verdict(ratio >= targetRatio)})`,
      ]);
    }
  }
  console.log(
    table(
      [
        "in flight",
        "client",
        "requests/s",
        "client CPU us/req (range)",
        "sink CPU us/req",
        "connections opened",
        "failed or lost",
        `fetch/this CPU (>= ${targetRatio})`,
      ],
      rows,
    ),
  );
  console.log(
    `medians of ${rounds} runs each; client CPU: this process (the client, its timers and promises); ` +
      "sink CPU: the raw sink process, apart; connections opened: summed over the runs",
  );
  finish("webhook-client", { requestCount, rounds, levels, bodyBytes: body.length, runs, ratios });
}

/** Medians of one client's runs at one level (the machine is shared: single runs swing 20-40%). */
function summarise(runs: RunFigures[]) {
  const median = (pick: (figures: RunFigures) => number) => {
    const values = runs.map(pick).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)] as number;
  };
  const cpus = runs.map((figures) => figures.clientCpuUsPerRequest);
  return {
    requestsPerSecond: median((figures) => figures.requestsPerSecond),
    clientCpuUsPerRequest: median((figures) => figures.clientCpuUsPerRequest),
    clientCpuRange: `${fmt(Math.min(...cpus), 1)}-${fmt(Math.max(...cpus), 1)}`,
    sinkCpuUsPerRequest: median((figures) => figures.sinkCpuUsPerRequest),
    connectionsOpened: runs.reduce((sum, figures) => sum + figures.connectionsOpened, 0),
    failedOrLost: runs.reduce(
      (sum, figures) => sum + figures.failed + Math.abs(figures.requests - requestCount),
      0,
    ),
  };
}

await main();
