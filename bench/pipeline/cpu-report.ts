/**
 * What the pipeline's CPU comes to per alert, and with no alerts at all (issue 18's everyday-rate
 * targets): the processes that do the pipeline's work are the five stages, the broker and Postgres;
 * the bench (the load) and the sink (the receiver) are the harness and are reported apart.
 *
 * The broker and Postgres are shared with whatever else runs on this machine, so their figures
 * include others' work: the idle measurement also reads the broker before the stages started.
 */

/** The processes an alert's CPU is counted over, as the bench names them. */
export const pipelineProcesses = [
  "evaluator",
  "aggregator",
  "sender",
  "rule-updater",
  "rule-service",
  "kafka",
  "postgres",
] as const;

/** The stages, each held to the idle target. */
export const stageProcesses = pipelineProcesses.slice(0, 5);

const idleStageTargetPercent = 3;
const idleBrokerTargetPercent = 5;
/** At a fixed everyday rate, CPU per alert at most this many times the max rate's. */
export const everydayCpuRatioMax = 2;
/** Max alerts/s end to end over the CPU floor's rate, at least. */
export const floorRateFractionMin = 0.9;

/**
 * CPU microseconds per alert over a window of `seconds`: `cpuPercent` (of one core, per process)
 * summed over `processes`. NaN when a process has no figure (a restarted broker).
 */
export function cpuUsPerAlert(
  cpuPercent: Record<string, number>,
  seconds: number,
  alerts: number,
  processes: readonly string[] = pipelineProcesses,
): number {
  let cpuS = 0;
  for (const name of processes) cpuS += ((cpuPercent[name] ?? Number.NaN) / 100) * seconds;
  return (cpuS / alerts) * 1e6;
}

export interface IdleCpu {
  seconds: number;
  /** % of one core per process while the stages had nothing to do. */
  percent: Record<string, number>;
  /** The broker's % of one core over as long, before the stages started: others' share. */
  brokerBeforePercent: number;
}

/** % of one core each process used over `seconds`, from a reader of cumulative CPU seconds. */
export async function cpuPercentOver(
  readCpuSeconds: () => Record<string, number>,
  seconds: number,
): Promise<Record<string, number>> {
  const before = readCpuSeconds();
  const startedAt = performance.now();
  await Bun.sleep(seconds * 1000);
  const after = readCpuSeconds();
  const elapsedS = (performance.now() - startedAt) / 1000;
  const percent: Record<string, number> = {};
  for (const [name, cpuS] of Object.entries(after))
    percent[name] = ((cpuS - (before[name] ?? Number.NaN)) / elapsedS) * 100;
  return percent;
}

/** Each stage and the broker against their idle targets. */
export function idleVerdicts(
  idle: IdleCpu,
): { label: string; percent: number; targetPercent: number; met: boolean }[] {
  const row = (label: string, percent: number, targetPercent: number) => ({
    label,
    percent,
    targetPercent,
    met: percent <= targetPercent,
  });
  return [
    ...stageProcesses.map((stage) => row(stage, idle.percent[stage] ?? Number.NaN, idleStageTargetPercent)),
    row("broker", idle.percent.kafka ?? Number.NaN, idleBrokerTargetPercent),
  ];
}
