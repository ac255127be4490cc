/**
 * The demo's alert stream: the alert-producer's `load` command as a child process, sending a fixed
 * mix of alerts through HTTP ingest with the run's ingest credential until it is stopped. The mix is
 * what the demo rules (seed.ts) match.
 */
import { type ChildProcess, spawnLogged } from "./processes.ts";

const ratePerS = 20;

/** name:weight lists: LOW is common and CRITICAL rare, as in real alert streams. */
const mix = {
  severities: "LOW:50,MEDIUM:30,HIGH:15,CRITICAL:5",
  sources: "api:4,db:2,payments:2,checkout:2",
  names: "cpu-high:3,latency-high:3,disk-full:2,error-rate:2",
};

/**
 * A fixed seed repeats the same sequence of severities, sources and names on every run; the alert
 * ids still differ, because the producer prefixes them with a fresh run id.
 */
export function startAlertStream(ingestUrl: string, credential: string): ChildProcess {
  return spawnLogged(
    "demo-alerts",
    [
      process.execPath,
      "src/stages/alert-producer/main.ts",
      "load",
      "--rate",
      String(ratePerS),
      "--forever",
      "--severities",
      mix.severities,
      "--sources",
      mix.sources,
      "--names",
      mix.names,
      "--context",
      "env=demo",
      "--seed",
      "1",
      "--ingest",
      ingestUrl,
    ],
    // In the environment, not the arguments: a secret stays out of process listings.
    { INGEST_CREDENTIAL: credential },
  );
}

export const alertStreamLabel = `${ratePerS} alerts/s (${mix.severities})`;
