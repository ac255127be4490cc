/**
 * The console's view of the stages: each stage's /metrics scraped server-side every interval and kept
 * as a bounded ring of samples per stage, so the dashboard can draw the last minutes without any
 * metrics database. Rates are deltas of the counters between consecutive samples.
 */

export interface StageTarget {
  name: string;
  /** The stage's metrics URL, e.g. http://127.0.0.1:9102/metrics (a bare origin gets /metrics). */
  url: string;
}

interface Sample {
  atMs: number;
  /** From /readyz beside /metrics: undefined when it did not answer. */
  ready?: boolean;
  /** Metric name -> sum over its label sets; undefined when the scrape failed. */
  metrics: Map<string, number> | undefined;
  error?: string;
}

export interface StagePoint {
  t: number;
  consumed_per_s: number | null;
  produced_per_s: number | null;
  lag: number | null;
}

export interface StageSeries {
  name: string;
  url: string;
  up: boolean;
  last_error: string | null;
  ready: boolean | null;
  rules_version_applied: number | null;
  dead_lettered_total: number | null;
  points: StagePoint[];
}

/** Parses `evaluator=http://127.0.0.1:9102,sender=http://...`; throws naming the bad entry. */
export function parseStageTargets(text: string): StageTarget[] {
  const targets: StageTarget[] = [];
  for (const entry of text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const at = entry.indexOf("=");
    const name = entry.slice(0, at).trim();
    const raw = entry.slice(at + 1).trim();
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error(`CONSOLE_STAGE_METRICS: "${entry}" is not name=http://host:port[/metrics]`);
    }
    if (at <= 0 || !/^https?:$/.test(url.protocol)) {
      throw new Error(`CONSOLE_STAGE_METRICS: "${entry}" is not name=http://host:port[/metrics]`);
    }
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/metrics";
    targets.push({ name, url: url.toString() });
  }
  return targets;
}

/** Sums each metric over its label sets, from Prometheus' text format. */
export function parsePrometheusText(text: string): Map<string, number> {
  const metrics = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    if (!Number.isFinite(value)) continue;
    const name = match[1] as string;
    metrics.set(name, (metrics.get(name) ?? 0) + value);
  }
  return metrics;
}

export interface StageScraper {
  readonly targets: readonly StageTarget[];
  readonly intervalMs: number;
  series(sinceMs?: number): StageSeries[];
  stop(): void;
}

export function startStageScraper(
  targets: readonly StageTarget[],
  options: { intervalMs: number; samplesMax: number; timeoutMs?: number },
): StageScraper {
  const rings = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
  let inFlight = false;
  const scrapeAll = async () => {
    if (inFlight) return; // a slow round is skipped, not queued
    inFlight = true;
    try {
      await Promise.all(
        targets.map(async (target) => {
          const sample = await scrape(target.url, options.timeoutMs ?? Math.min(2000, options.intervalMs));
          const ring = rings.get(target.name) as Sample[];
          ring.push(sample);
          if (ring.length > options.samplesMax) ring.splice(0, ring.length - options.samplesMax);
        }),
      );
    } finally {
      inFlight = false;
    }
  };
  const timer = targets.length > 0 ? setInterval(scrapeAll, options.intervalMs) : undefined;
  if (targets.length > 0) void scrapeAll();

  return {
    targets,
    intervalMs: options.intervalMs,
    series(sinceMs = 0) {
      return targets.map((target) => {
        const ring = rings.get(target.name) as Sample[];
        const last = ring.at(-1);
        const points: StagePoint[] = [];
        for (let i = 1; i < ring.length; i++) {
          const before = ring[i - 1] as Sample;
          const now = ring[i] as Sample;
          if (now.atMs < sinceMs) continue;
          points.push({
            t: now.atMs,
            consumed_per_s: rate(before, now, "records_consumed_total"),
            produced_per_s: rate(before, now, "records_produced_total"),
            lag: now.metrics ? (now.metrics.get("consumer_lag") ?? 0) : null,
          });
        }
        const metric = (name: string) => last?.metrics?.get(name) ?? null;
        return {
          name: target.name,
          url: target.url,
          up: last?.metrics !== undefined,
          last_error: last?.error ?? null,
          ready: last?.ready ?? null,
          rules_version_applied: metric("rules_version_applied"),
          dead_lettered_total: metric("records_dead_lettered_total"),
          points,
        };
      });
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}

async function scrape(url: string, timeoutMs: number): Promise<Sample> {
  const atMs = Date.now();
  // /readyz sits beside /metrics on every stage's port (src/runtime/service.ts).
  const readyz = new URL("/readyz", url).toString();
  const [metrics, ready] = await Promise.all([
    fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(
      async (response) =>
        response.ok ? parsePrometheusText(await response.text()) : new Error(`HTTP ${response.status}`),
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    ),
    fetch(readyz, { signal: AbortSignal.timeout(timeoutMs) }).then(
      (response) => (response.status === 404 ? undefined : response.ok),
      () => undefined,
    ),
  ]);
  if (metrics instanceof Error) return { atMs, metrics: undefined, error: metrics.message };
  return { atMs, metrics, ready };
}

function rate(before: Sample, now: Sample, metric: string): number | null {
  if (!before.metrics || !now.metrics) return null;
  // A counter appears with its first record, so a missing one counts as 0.
  const delta = (now.metrics.get(metric) ?? 0) - (before.metrics.get(metric) ?? 0);
  const seconds = (now.atMs - before.atMs) / 1000;
  if (seconds <= 0) return null;
  // A negative delta means the stage restarted and its counters began again.
  return delta < 0 ? null : delta / seconds;
}
