/**
 * Runs bench/support/raw-sink.ts as a child process, so that a bench measuring a webhook client
 * counts the client's CPU alone; the sink reports its own on request.
 */
export interface RawSinkStats {
  requests: number;
  connectionsOpened: number;
  connectionsOpen: number;
  cpuUs: number;
}

/** The raw sink process and its stats line protocol (raw-sink.ts). */
export class RawSinkProcess {
  private readonly process = Bun.spawn([process.execPath, new URL("raw-sink.ts", import.meta.url).pathname], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  private readonly lines = this.process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  private buffered = "";

  get pid(): number {
    return this.process.pid;
  }

  async port(): Promise<number> {
    return (JSON.parse(await this.nextLine()) as { port: number }).port;
  }

  async stats(): Promise<RawSinkStats> {
    this.process.stdin.write("stats\n");
    await this.process.stdin.flush();
    return JSON.parse(await this.nextLine()) as RawSinkStats;
  }

  async stop(): Promise<void> {
    await this.process.stdin.end();
    await this.process.exited;
  }

  private async nextLine(): Promise<string> {
    for (;;) {
      const newline = this.buffered.indexOf("\n");
      if (newline >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        return line;
      }
      const { done, value } = await this.lines.read();
      if (done) throw new Error("the raw sink exited");
      this.buffered += value;
    }
  }
}
