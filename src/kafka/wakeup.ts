/**
 * Wakes the JS thread when librdkafka puts something on a client's queues, so that an idle client
 * sleeps in the event loop instead of polling on a timer.
 *
 * librdkafka writes one byte to a file descriptor when an element is enqueued on an empty queue
 * (rd_kafka_queue_io_event_enable); we give it one end of a socket pair and let Bun watch the other
 * end like any socket, so the wake arrives as a socket `data` event on the JS thread. A queue is
 * signalled again only once it was served, so whoever is woken must poll it until it is empty.
 */

import { type Pointer, ptr, read } from "bun:ffi";
import type { FdSocketOptions, Socket, UnixSocketOptions } from "bun";
import { libc, rdk } from "./native.ts";

const addressFamilyUnix = 1;
const socketStream = 1;
const socketNonBlocking = 0o4000;
const socketCloseOnExec = 0o2000000;
const wakeByte = new Uint8Array([1]);

interface Waiter {
  resolve: () => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class QueueWakeup {
  /** [read end: Bun's socket, write end: librdkafka's]. */
  readonly #fds = new Int32Array(2);
  readonly #socket: Promise<Socket>;
  readonly #waiters = new Set<Waiter>();
  #wakes = 0;
  #failure: Error | undefined;
  #closed = false;

  /** `onWake` runs on every wake, before any `wait` resolves. */
  constructor(onWake: () => void = () => {}) {
    const flags = socketStream | socketNonBlocking | socketCloseOnExec;
    if (libc.socketpair(addressFamilyUnix, flags, 0, ptr(this.#fds)) !== 0)
      throw new Error(
        `kafka wakeup: socketpair failed (errno ${read.i32(libc.__errno_location() as Pointer, 0)})`,
      );
    const options: FdSocketOptions = {
      fd: this.#fds[0] as number,
      socket: {
        data: () => {
          this.#wakes++;
          onWake();
          for (const waiter of this.#waiters) this.#release(waiter);
        },
      },
    };
    // Bun.connect takes an open descriptor (FdSocketOptions), but its declarations omit that overload.
    this.#socket = Bun.connect(options as unknown as UnixSocketOptions);
    this.#socket.then(
      // Waking is not a reason to keep the process alive: a pending wait holds its own timer.
      (socket) => socket.unref(),
      (error: unknown) => {
        this.#failure = new Error(`kafka wakeup: cannot watch the socket: ${String(error)}`);
        for (const waiter of this.#waiters) this.#release(waiter);
      },
    );
  }

  /** Has librdkafka signal `queue` (the final one, when queues are forwarded) on this wakeup. */
  watch(queue: Pointer): void {
    rdk.rd_kafka_queue_io_event_enable(queue, this.#fds[1] as number, wakeByte, wakeByte.length);
  }

  /** Wakes so far. Read it before polling: `wait(seen)` then cannot miss a wake after the poll. */
  get wakes(): number {
    return this.#wakes;
  }

  /** Resolves at the first wake after `seen` wakes, after `timeoutMs`, or once `signal` aborts. */
  wait(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#wakes > seen || this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = { resolve, timer: undefined, signal, onAbort: () => this.#release(waiter) };
      // A deadline already passed is a wait of 0 (a negative timer is clamped with a warning).
      waiter.timer = setTimeout(waiter.onAbort, Math.max(0, timeoutMs));
      signal?.addEventListener("abort", waiter.onAbort);
      this.#waiters.add(waiter);
    });
  }

  #release(waiter: Waiter): void {
    this.#waiters.delete(waiter);
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    waiter.resolve();
  }

  /**
   * Releases every waiter and closes both ends. Call it only once librdkafka can no longer write:
   * after rd_kafka_destroy, or the descriptor number could be reused by a file librdkafka then
   * writes into.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#waiters) this.#release(waiter);
    try {
      (await this.#socket).terminate(); // closes the read end
    } catch {
      libc.close(this.#fds[0] as number);
    }
    libc.close(this.#fds[1] as number);
  }
}
