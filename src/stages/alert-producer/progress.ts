/**
 * What the load generator shows while it runs: on a terminal one line redrawn in place every 250 ms,
 * otherwise (CI, pipes, logs) a JSON line every 5 s that tools can parse.
 */

export interface Progress {
  sent: number;
  acknowledged: number;
  errors: number;
  /** Alerts due by the schedule but not sent yet. */
  backlog: number;
  elapsedMs: number;
  /** Expected time left; undefined for --forever. */
  remainingMs: number | undefined;
}

export interface Output {
  isTTY?: boolean;
  write(text: string): unknown;
}

const liveIntervalMs = 250;
const plainIntervalMs = 5000;

export function ratePerS(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round((count * 1000) / elapsedMs) : 0;
}

export function formatLiveLine(progress: Progress): string {
  const eta = progress.remainingMs === undefined ? "-" : `${(progress.remainingMs / 1000).toFixed(1)}s`;
  return [
    `sent ${progress.sent}`,
    `acked ${progress.acknowledged}`,
    `rate ${ratePerS(progress.sent, progress.elapsedMs)}/s`,
    `errors ${progress.errors}`,
    `behind ${progress.backlog}`,
    `ETA ${eta}`,
  ].join("  ");
}

export function formatProgressJson(progress: Progress): string {
  return JSON.stringify({
    event: "progress",
    sent: progress.sent,
    acknowledged: progress.acknowledged,
    errors: progress.errors,
    backlog: progress.backlog,
    ratePerS: ratePerS(progress.sent, progress.elapsedMs),
    elapsedMs: Math.round(progress.elapsedMs),
    remainingMs: progress.remainingMs === undefined ? null : Math.round(progress.remainingMs),
  });
}

/** Starts reporting `read()` to `output`; the returned function stops it and ends the live line. */
export function startProgress(output: Output, read: () => Progress): () => void {
  const live = output.isTTY === true;
  const timer = setInterval(
    () => {
      // \r returns to the line start, \x1b[K clears what a longer previous line left behind.
      if (live) output.write(`\r${formatLiveLine(read())}\x1b[K`);
      else output.write(`${formatProgressJson(read())}\n`);
    },
    live ? liveIntervalMs : plainIntervalMs,
  );
  return () => {
    clearInterval(timer);
    if (live) output.write(`\r${formatLiveLine(read())}\x1b[K\n`);
  };
}
