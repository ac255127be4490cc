/**
 * CPU used over a window, for benches that run their work in this process or beside it: this
 * process, all Postgres processes (others' queries too), the broker `./dev` started (NaN when
 * KAFKA_BROKERS points elsewhere) and the whole machine.
 */
import { brokerPid, CpuByName, cpuSeconds, machineCpuSeconds } from "../pipeline/procs.ts";
import { fmt } from "./common.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;

export interface CpuUse {
  seconds: number;
  benchCpuS: number;
  postgresCpuS: number;
  brokerCpuS: number;
  machineBusyPercent: number;
  /** CPU seconds of the whole machine (all cores, every process) over the window. */
  machineBusyS: number;
}

/** Starts measuring; the returned function reads what was used since. */
export function startCpuMeter(): () => CpuUse {
  const startMs = performance.now();
  const bench = process.cpuUsage();
  const postgres = new CpuByName("postgres");
  const postgresBefore = postgres.sample(); // a running total, from what each process had used at first sight
  const broker = brokerPid(repoRoot) ?? 0;
  const brokerBefore = cpuSeconds(broker) ?? Number.NaN;
  const machine = machineCpuSeconds();
  return () => {
    const benchNow = process.cpuUsage(bench);
    const machineNow = machineCpuSeconds();
    return {
      seconds: (performance.now() - startMs) / 1000,
      benchCpuS: (benchNow.user + benchNow.system) / 1e6,
      postgresCpuS: postgres.sample() - postgresBefore,
      brokerCpuS: (cpuSeconds(broker) ?? Number.NaN) - brokerBefore,
      machineBusyPercent: ((machineNow.busy - machine.busy) / (machineNow.total - machine.total)) * 100,
      machineBusyS: machineNow.busy - machine.busy,
    };
  };
}

export function describeCpu(use: CpuUse): string {
  const ofOneCore = (cpuS: number) => `${fmt((cpuS / use.seconds) * 100)}%`;
  return (
    `bench process ${ofOneCore(use.benchCpuS)}, postgres ${ofOneCore(use.postgresCpuS)}, ` +
    `broker ${ofOneCore(use.brokerCpuS)} of one core; machine ${fmt(use.machineBusyPercent)}% busy (2 cores, others' work included)`
  );
}
