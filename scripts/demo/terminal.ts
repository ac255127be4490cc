/**
 * The demo's one output: lines that scroll (what the sinks receive) above a footer that is redrawn
 * in place (the status view). On a terminal the footer is erased and rewritten with plain ANSI
 * escapes; anywhere else (a pipe, a file, a test) there is no footer and every line is just printed.
 */
export class LiveTerminal {
  readonly interactive: boolean;
  #footer: string[] = [];

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.interactive = out.isTTY === true;
  }

  /** Prints one line above the footer. */
  line(text: string): void {
    this.out.write(`${this.#erase()}${text}\n${this.#render()}`);
  }

  /** Replaces the footer; ignored when not interactive. */
  footer(lines: string[]): void {
    if (!this.interactive) return;
    const erase = this.#erase();
    // A line wider than the terminal wraps and would throw off the count of lines to erase next time.
    const width = (this.out.columns ?? 120) - 1;
    this.#footer = lines.map((line) => (line.length > width ? line.slice(0, width) : line));
    this.out.write(erase + this.#render());
  }

  /** Leaves the last footer on screen as ordinary output; later lines print below it. */
  release(): void {
    this.#footer = [];
  }

  #erase(): string {
    // Cursor to the start of the footer's first line, then clear to the end of the screen.
    return this.#footer.length === 0 ? "" : `\x1b[${this.#footer.length}F\x1b[0J`;
  }

  #render(): string {
    return this.#footer.map((line) => `${line}\n`).join("");
  }
}
