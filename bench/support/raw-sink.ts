/**
 * A webhook sink that costs less than the clients it measures: a raw Bun.listen responder, run as its
 * own process (`bun bench/support/raw-sink.ts`) so that its CPU is counted apart from the bench's.
 *
 * It reads each request's head up to the blank line and skips `content-length` bytes of body (no
 * header parsing beyond that), then answers `200 ok` with keep-alive, all answers to one read in one
 * write. Request bodies framed otherwise (chunked) are a bench bug and stop the sink.
 *
 * Prints `{"port": N}` once it listens. Each `stats` line on stdin gets one JSON line on stdout:
 * {"requests": N, "connectionsOpened": N, "connectionsOpen": N, "cpuUs": N} (cpuUs: its own user +
 * system CPU so far, in microseconds).
 */
import type { Socket } from "bun";

const answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
const headEnd = Buffer.from("\r\n\r\n");
const contentLengthPattern = /\ncontent-length:[ \t]*(\d+)/i;
const headBytesMax = 64 * 1024;

interface Connection {
  /** An incomplete head carried over to the next read. */
  pending: Buffer | undefined;
  /** Body bytes of the current request still to skip. */
  bodyRemaining: number;
}

let requests = 0;
let connectionsOpened = 0;
let connectionsOpen = 0;

function receive(socket: Socket<Connection>, chunk: Buffer): void {
  const connection = socket.data;
  const bytes = connection.pending === undefined ? chunk : Buffer.concat([connection.pending, chunk]);
  connection.pending = undefined;
  let offset = 0;
  let answers = 0;
  while (offset < bytes.length) {
    if (connection.bodyRemaining > 0) {
      const skipped = Math.min(connection.bodyRemaining, bytes.length - offset);
      connection.bodyRemaining -= skipped;
      offset += skipped;
      continue;
    }
    const end = bytes.indexOf(headEnd, offset);
    if (end < 0) {
      if (bytes.length - offset > headBytesMax) throw new Error("request head over 64 KiB");
      connection.pending = bytes.subarray(offset);
      break;
    }
    const head = bytes.toString("latin1", offset, end + 2);
    if (/\ntransfer-encoding:/i.test(head)) throw new Error("chunked request bodies are not supported");
    connection.bodyRemaining = Number(contentLengthPattern.exec(head)?.[1] ?? 0);
    offset = end + headEnd.length;
    answers++;
  }
  if (answers === 0) return;
  requests += answers;
  socket.write(answers === 1 ? answer : answer.repeat(answers));
}

const listener = Bun.listen<Connection>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(socket) {
      socket.data = { pending: undefined, bodyRemaining: 0 };
      connectionsOpened++;
      connectionsOpen++;
    },
    data: receive,
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
