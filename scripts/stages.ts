/**
 * What `./dev up` runs on top of the infrastructure: every pipeline stage as its own process, and a
 * demo around them. In order:
 *   1. two local sinks standing in for the clients' systems: webhooks on :8090, SMTP on :2525;
 *   2. the stages, each logging to .run/logs/<stage>.log and awaited on /readyz;
 *   3. demo clients, rules and endpoints, created through the rule-service API (idempotent);
 *   4. a stream of demo alerts (the alert-producer's `load` command, 20 alerts/s, through ingest with a
 *      fresh ingest credential of the demo's shared scope);
 *   5. a live status view, redrawn every second.
 * dev.ts stops what this returns in reverse order on Ctrl-C: the view, the stream, the stages, the sinks.
 */
import { randomBytes } from "node:crypto";
import { alertStreamLabel, startAlertStream } from "./demo/alerts.ts";
import {
  assertPortsFree,
  type ChildProcess,
  killLeftovers,
  spawnLogged,
  waitUntilReady,
} from "./demo/processes.ts";
import { seedDemo } from "./demo/seed.ts";
import { startSmtpSink, startWebhookSink } from "./demo/sinks.ts";
import { startStatusView } from "./demo/status.ts";
import { LiveTerminal } from "./demo/terminal.ts";

export interface RunningStage {
  name: string;
  /** Asks the stage to stop and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Fixed ports, so the API, the metrics and the sinks are at the same address on every run. A stage's
 * port serves /readyz and /metrics, plus the API of rule-service and the ingest of alert-producer.
 */
export const stagePorts = {
  "rule-service": 8080,
  "rule-updater": 9101,
  evaluator: 9102,
  aggregator: 9103,
  sender: 9104,
  "alert-producer": 8081,
} as const;
export const demoPorts = { "webhook sink": 8090, "SMTP sink": 2525 } as const;
const ruleServiceUrl = `http://127.0.0.1:${stagePorts["rule-service"]}`;
const ingestUrl = `http://127.0.0.1:${stagePorts["alert-producer"]}`;
const webhookSinkUrl = `http://127.0.0.1:${demoPorts["webhook sink"]}`;

interface StageSpec {
  name: keyof typeof stagePorts;
  args?: string[];
  env?: Record<string, string>;
}

function stageSpecs(adminToken: string): StageSpec[] {
  return [
    // The console (served by rule-service) scrapes every other stage's /metrics for its dashboard.
    {
      name: "rule-service",
      env: {
        ADMIN_TOKEN: adminToken,
        CONSOLE_STAGE_METRICS: consoleStageMetrics(),
        // The demo's endpoints point at the sinks on loopback, refused when saved unless allowed.
        SSRF_ALLOW_CIDRS: "127.0.0.1/32",
      },
    },
    { name: "rule-updater" },
    { name: "evaluator" },
    { name: "aggregator" },
    {
      name: "sender",
      env: {
        // The sinks are on loopback, which the SSRF guard refuses unless allowed.
        SSRF_ALLOW_CIDRS: "127.0.0.1/32",
        SMTP_HOST: "127.0.0.1",
        SMTP_PORT: String(demoPorts["SMTP sink"]),
        SMTP_SECURITY: "none",
      },
    },
    { name: "alert-producer", args: ["serve"] },
  ];
}

function consoleStageMetrics(): string {
  return Object.entries(stagePorts)
    .filter(([name]) => name !== "rule-service")
    .map(([name, port]) => `${name}=http://127.0.0.1:${port}`)
    .join(",");
}

/** The evaluator is ready only once the rule-updater has written the first rules snapshot. */
const readyTimeoutMs = 30_000;

export async function startStages(): Promise<RunningStage[]> {
  // A fresh admin token per run: only whoever started the demo can use the API.
  const adminToken = `demo-${randomBytes(24).toString("hex")}`;
  const specs = stageSpecs(adminToken);
  await assertPortsFree({ ...stagePorts, ...demoPorts });
  process.on("exit", killLeftovers);
  exitOnSecondSignal();

  const terminal = new LiveTerminal();
  const started: RunningStage[] = [];
  try {
    const webhookSink = startWebhookSink(demoPorts["webhook sink"], terminal);
    started.push(webhookSink);
    const smtpSink = await startSmtpSink(demoPorts["SMTP sink"], terminal);
    started.push(smtpSink);

    const children = specs.map((spec) =>
      spawnLogged(spec.name, [process.execPath, `src/stages/${spec.name}/main.ts`, ...(spec.args ?? [])], {
        HTTP_PORT: String(stagePorts[spec.name]),
        ...spec.env,
      }),
    );
    started.push(...children.map((child) => supervised(child, terminal)));
    await Promise.all(
      children.map(async (child, i) => {
        const port = stagePorts[(specs[i] as StageSpec).name];
        await waitUntilReady(child, port, readyTimeoutMs);
        terminal.line(
          `ready  ${child.name.padEnd(15)} http://127.0.0.1:${port}  pid ${child.pid}  log ${child.logFile}`,
        );
      }),
    );
    terminal.line(`admin token for the API on ${ruleServiceUrl} (this run only): ${adminToken}`);

    const seeded = await seedDemo(ruleServiceUrl, adminToken, webhookSinkUrl);
    terminal.line(
      `demo clients ${seeded.clients.map((c) => c.name).join(", ")}: ${seeded.total} clients, rules and endpoints, ` +
        `${seeded.created} created now, the rest reused`,
    );
    terminal.line(
      `ingest credential for ${ingestUrl}/api/v1/alerts (scope ${seeded.credential.scope}, this run only): ${seeded.credential.secret}`,
    );

    const alerts = startAlertStream(ingestUrl, seeded.credential.secret);
    started.push(supervised(alerts, terminal));
    terminal.line(`demo alerts: ${alertStreamLabel}  pid ${alerts.pid}  log ${alerts.logFile}`);
    terminal.line(`sinks: webhooks on ${webhookSinkUrl}, mail on smtp://127.0.0.1:${demoPorts["SMTP sink"]}`);

    const watched = specs.map((spec) => ({ name: spec.name, port: stagePorts[spec.name] }));
    started.push(startStatusView(terminal, watched, seeded.clients, [webhookSink, smtpSink]));
    return started;
  } catch (error) {
    for (const part of started.reverse()) await part.stop();
    throw error;
  }
}

/** A child that reports its own exit: as a problem while the demo runs, with its code when stopped. */
function supervised(child: ChildProcess, terminal: LiveTerminal): RunningStage {
  let stopping = false;
  void child.exited.then((code) => {
    if (!stopping) terminal.line(`${child.name} exited with code ${code}: see ${child.logFile}`);
  });
  return {
    name: child.name,
    async stop() {
      stopping = true;
      const code = await child.stop();
      terminal.line(
        `stopped ${child.name} (${code === null ? "killed: no exit within the bound" : `exit ${code}`})`,
      );
    },
  };
}

/**
 * dev.ts stops everything on the first SIGINT or SIGTERM. A second one (an impatient Ctrl-C) exits
 * at once; the exit hook still kills every child, so nothing is left behind.
 */
function exitOnSecondSignal(): void {
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
