/**
 * What the pipeline bench samples once a second: CPU time and memory of processes from /proc, the
 * whole machine's CPU from /proc/stat, and the stages' /metrics counters.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { infraUrls } from "../../src/runtime/env.ts";

/** Linux USER_HZ: /proc reports CPU times in these ticks. */
const ticksPerSecond = 100;

/** CPU seconds (user + system) of a process's or a thread's stat file; throws once it is gone. */
function statCpuSeconds(statPath: string): number {
  const stat = readFileSync(statPath, "utf8");
  // Fields after the command, which may hold spaces: state is [0], utime [11], stime [12].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** CPU seconds (user + system) a process has used, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    return statCpuSeconds(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a JVM's JIT compiler threads (C1 and C2; Linux shows their names cut to 15
 * characters). A broker started minutes ago spends much of its CPU compiling its hot paths: this tells
 * that warm-up apart from what requests cost once they run compiled.
 */
export function compilerCpuSeconds(pid: number): number {
  let seconds = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        if (!/^C[12] CompilerThre/.test(readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8"))) continue;
        seconds += statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
      } catch {
        // The thread ended meanwhile.
      }
    }
    return seconds;
  } catch {
    return Number.NaN;
  }
}

/**
 * Times any thread of the process went to sleep waiting (voluntary context switches, summed over its
 * threads; threads that ended are not counted): each is a wake-up later, the fixed cost that
 * batching saves, and counts it whatever else the machine runs.
 */
export function threadWaits(pid: number): number {
  let waits = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
        waits += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      } catch {
        // The thread ended meanwhile.
      }
    }
    return waits;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS and VmHWM (the peak since start or the last reset) in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (clear_refs 5), so each phase gets its own peak. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU seconds used by every process named `comm` (e.g. all Postgres backends, ours and others'),
 * summed over time: a process that ended (a backend that closed, a server restart) keeps what it
 * used, a new one adds what it used since it started.
 */
export class CpuByName {
  #last = new Map<number, number>();
  #total = 0;

  /** `only`, when given, keeps the processes whose command line (NULs as spaces) it accepts. */
  constructor(
    readonly comm: string,
    readonly only?: (commandLine: string) => boolean,
  ) {
    this.sample();
  }

  sample(): number {
    const now = new Map<number, number>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== this.comm) continue;
        if (this.only && !this.only(readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ")))
          continue;
      } catch {
        continue;
      }
      const pid = Number(entry);
      const seconds = cpuSeconds(pid);
      if (seconds !== undefined) now.set(pid, seconds);
    }
    for (const [pid, seconds] of now) this.#total += seconds - (this.#last.get(pid) ?? 0);
    this.#last = now;
    return this.#total;
  }
}

/**
 * The CPU of the Postgres backends serving `database` (`postgres: 15/main: user database host(port)
 * state`): the pipeline's statements, without other databases' work on a shared server, nor the
 * server's own background processes.
 */
export function postgresCpuOf(database: string): CpuByName {
  return new CpuByName("postgres", (commandLine) => commandLine.includes(` ${database} `));
}

/** Busy and total CPU seconds of the whole machine (all cores). */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1, 9).map(Number);
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy: busy / ticksPerSecond, total: (busy + (idle ?? 0) + (iowait ?? 0)) / ticksPerSecond };
}

let listeningBroker: number | undefined;

/**
 * The broker that `./dev` started in this checkout; without one (a second worktree sharing another
 * checkout's broker), the local process listening on KAFKA_BROKERS' first port, if any.
 */
export function brokerPid(repoRoot: string): number | undefined {
  const pidFile = join(repoRoot, ".run/kafka/kafka.pid");
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return existsSync(`/proc/${pid}`) ? pid : undefined;
  }
  if (listeningBroker === undefined || !existsSync(`/proc/${listeningBroker}`)) {
    const port = Number(/:(\d+)$/.exec(infraUrls.kafkaBrokers.split(",")[0]?.trim() ?? "")?.[1]);
    listeningBroker = Number.isInteger(port) ? listenerPid(port) : undefined;
  }
  return listeningBroker;
}

/** The process with a socket listening on TCP `port` on this machine (/proc/net/tcp{,6}, then fds). */
function listenerPid(port: number): number | undefined {
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is [1] (hex address:port), st is [3] (0A: listening), inode is [9].
      if (fields[1]?.endsWith(`:${portHex}`) && fields[3] === "0A" && fields[9]) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`))?.[1];
        if (inode !== undefined && inodes.has(inode)) return Number(entry);
      } catch {
        // The descriptor closed meanwhile.
      }
    }
  }
  return undefined;
}

/** The counters the bench reads from a stage's /metrics (sums over labels). */
export interface StageCounters {
  consumed: number;
  produced: number;
  lag: number;
  batchSeconds: number;
  batches: number;
  /** Requests the stage's consumer and producer sent so far (kafka_requests_sent). */
  kafkaRequests: KafkaRequests;
}

export interface KafkaRequests {
  produce: number;
  fetch: number;
  /** Commits, heartbeats, metadata and the rest. */
  other: number;
}

function kafkaRequests(text: string): KafkaRequests {
  const requests = { produce: 0, fetch: 0, other: 0 };
  for (const match of text.matchAll(/^kafka_requests_sent\{[^}]*request="(\w+)"[^}]*\} ([-+0-9.eE]+)$/gm)) {
    const kind = match[1] === "Produce" ? "produce" : match[1] === "Fetch" ? "fetch" : "other";
    requests[kind] += Number(match[2]);
  }
  return requests;
}

const metricSum = (text: string, name: string) => {
  let total = 0;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([-+0-9.eE]+)$`, "gm")))
    total += Number(match[1]);
  return total;
};

export async function stageCounters(port: number): Promise<StageCounters | undefined> {
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) })
    ).text();
    return {
      consumed: metricSum(text, "records_consumed_total"),
      produced: metricSum(text, "records_produced_total"),
      lag: metricSum(text, "consumer_lag"),
      batchSeconds: metricSum(text, "batch_duration_seconds_sum"),
      batches: metricSum(text, "batch_duration_seconds_count"),
      kafkaRequests: kafkaRequests(text),
    };
  } catch {
    return undefined;
  }
}
