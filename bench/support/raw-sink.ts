/**
 * A webhook sink that costs less than the clients it measures: a raw Bun.listen responder, run as its
 * own process (`bun bench/support/raw-sink.ts`) so that its CPU is counted apart from the bench's.
 *
 * It reads each request's head up to the blank line and skips `content-length` bytes of body
 * (request-framer.ts), then answers `200 ok` with keep-alive, all answers to one read in one write.
 * Request bodies framed otherwise (chunked) are a bench bug and stop the sink.
 *
 * Prints `{"port": N}` once it listens. Each `stats` line on stdin gets one JSON line on stdout:
 * {"requests": N, "connectionsOpened": N, "connectionsOpen": N, "cpuUs": N} (cpuUs: its own user +
 * system CPU so far, in microseconds).
 */
import { okAnswer, RequestFramer } from "./request-framer.ts";

let requests = 0;
let connectionsOpened = 0;
let connectionsOpen = 0;

const listener = Bun.listen<RequestFramer>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(socket) {
      socket.data = new RequestFramer(false);
      connectionsOpened++;
      connectionsOpen++;
    },
    data(socket, chunk) {
      const answers = socket.data.push(chunk);
      if (answers === 0) return;
      requests += answers;
      socket.write(answers === 1 ? okAnswer : okAnswer.repeat(answers));
    },
    close() {
      connectionsOpen--;
    },
    error(_, error) {
      console.error(`raw sink: ${error.message}`);
      process.exit(1);
    },
  },
});

console.log(JSON.stringify({ port: listener.port }));

for await (const line of console) {
  if (line.trim() !== "stats") continue;
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ requests, connectionsOpened, connectionsOpen, cpuUs: cpu.user + cpu.system }));
}
listener.stop(true);
