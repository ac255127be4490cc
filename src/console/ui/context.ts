import type { SessionInfo } from "./api.ts";

/** What every page gets: who is logged in, and a way to move to another page. */
export interface Context {
  session: SessionInfo;
  go(hash: string): void;
}

/** A page draws itself into `root` and may return a cleanup (timers) run when the user leaves it. */
export type PageRender = (ctx: Context, root: HTMLElement, params: string[]) => (() => void) | undefined;
