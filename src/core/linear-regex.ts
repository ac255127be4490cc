/**
 * Go regular expressions (RE2 syntax) matched in linear time, for silence matchers. Alertmanager
 * compiles a matcher's `=~` pattern with Go's regexp, fully anchored as `^(?:re)$`. JavaScript's RegExp
 * backtracks, so a tenant's `(a+)+b` against 40 characters of label would stall the evaluator for
 * every tenant. Here the pattern is parsed with Go's rules and run as a Thompson NFA (a Pike VM
 * without captures): time O(program size x input length), whatever the pattern.
 *
 * Supported: literals, `.`, classes (`[a-z]`, `[^...]`, `[[:alpha:]]`, `\d \s \w` and negations),
 * groups (`(re)`, `(?:re)`, `(?P<name>re)`), flags `i m s U` (`(?i)`, `(?i:re)`), alternation,
 * repetition (`* + ? {n} {n,} {n,m}`, lazy or not: it cannot change a whole-string match), anchors
 * `^ $ \A \z \b \B`, escapes (`\n \t \x41 \x{263a} \123 \Q...\E`, escaped punctuation).
 * Refused with a reason: Unicode classes (`\pL`), `\C`, and everything Go refuses (backreferences,
 * lookaround, repeat counts over 1000).
 */

/** A pattern Go would refuse, or one this engine does not support; `message` says which and where. */
export class RegexSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RegexSyntaxError";
  }
}

export interface LinearRegex {
  /** True when the whole of `text` matches (as Go's `^(?:re)$`). */
  matches(text: string): boolean;
}

/** Go's limit on `{n,m}` counts. */
const repeatCountMax = 1000;
/** Bounds the work per input character, so one tenant's pattern cannot slow the evaluator for all. */
export const programSizeMax = 2000;

type CharTest = (codePoint: number) => boolean;
type AssertKind = "beginText" | "endText" | "beginLine" | "endLine" | "wordBoundary" | "notWordBoundary";
type Node =
  | { kind: "empty" }
  | { kind: "char"; test: CharTest }
  | { kind: "assert"; assert: AssertKind }
  | { kind: "concat"; items: Node[] }
  | { kind: "alternate"; items: Node[] }
  | { kind: "repeat"; item: Node; min: number; max: number };

interface Flags {
  caseInsensitive: boolean;
  multiLine: boolean;
  dotAll: boolean;
}

type Range = readonly [number, number];
const digitRanges: Range[] = [[0x30, 0x39]];
const spaceRanges: Range[] = [
  [0x09, 0x0a],
  [0x0c, 0x0d],
  [0x20, 0x20],
];
const wordRanges: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const perlClasses: Record<string, Range[]> = { d: digitRanges, s: spaceRanges, w: wordRanges };
const posixClasses: Record<string, Range[]> = {
  alnum: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  alpha: [
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  ascii: [[0x00, 0x7f]],
  blank: [
    [0x09, 0x09],
    [0x20, 0x20],
  ],
  cntrl: [
    [0x00, 0x1f],
    [0x7f, 0x7f],
  ],
  digit: digitRanges,
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [
    [0x21, 0x2f],
    [0x3a, 0x40],
    [0x5b, 0x60],
    [0x7b, 0x7e],
  ],
  space: [
    [0x09, 0x0d],
    [0x20, 0x20],
  ],
  upper: [[0x41, 0x5a]],
  word: wordRanges,
  xdigit: [
    [0x30, 0x39],
    [0x41, 0x46],
    [0x61, 0x66],
  ],
};
const simpleEscapes: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };

const inRanges = (ranges: readonly Range[], cp: number): boolean =>
  ranges.some(([low, high]) => cp >= low && cp <= high);

function caseVariants(cp: number): number[] {
  const char = String.fromCodePoint(cp);
  const variants = [cp];
  for (const other of [char.toLowerCase(), char.toUpperCase()]) {
    const otherCp = other.codePointAt(0) as number;
    // Only one-to-one mappings: "ß".toUpperCase() is "SS", which is not a case of one character.
    if ([...other].length === 1 && !variants.includes(otherCp)) variants.push(otherCp);
  }
  return variants;
}

function classTest(ranges: readonly Range[], negated: boolean, flags: Flags): CharTest {
  const contains = flags.caseInsensitive
    ? (cp: number) => caseVariants(cp).some((variant) => inRanges(ranges, variant))
    : (cp: number) => inRanges(ranges, cp);
  return negated ? (cp) => !contains(cp) : contains;
}

function literalTest(cp: number, flags: Flags): CharTest {
  if (!flags.caseInsensitive) return (c) => c === cp;
  const variants = caseVariants(cp);
  return (c) => variants.includes(c);
}

const isWordChar = (cp: number | undefined): boolean => cp !== undefined && inRanges(wordRanges, cp);

/** Recursive descent over Go's grammar; positions in messages count code points from 0. */
class Parser {
  readonly #chars: string[];
  #pos = 0;
  #depth = 0;

  constructor(readonly pattern: string) {
    this.#chars = [...pattern];
  }

  parse(): Node {
    const node = this.#alternation({ caseInsensitive: false, multiLine: false, dotAll: false });
    if (this.#pos < this.#chars.length) throw this.#error("unexpected )");
    return node;
  }

  #error(reason: string, at = this.#pos): RegexSyntaxError {
    return new RegexSyntaxError(`${reason} at position ${at}`);
  }

  #peek(offset = 0): string | undefined {
    return this.#chars[this.#pos + offset];
  }

  #next(): string {
    const char = this.#chars[this.#pos++];
    if (char === undefined) throw this.#error("unexpected end of pattern");
    return char;
  }

  /** `a|b|c` up to a `)` or the end; `(?i)` inside changes flags for the rest of the group. */
  #alternation(outer: Flags): Node {
    if (++this.#depth > 500) throw this.#error("nesting too deep");
    const flags = { ...outer };
    const items = [this.#concatenation(flags)];
    while (this.#peek() === "|") {
      this.#pos++;
      items.push(this.#concatenation(flags));
    }
    this.#depth--;
    return items.length === 1 ? (items[0] as Node) : { kind: "alternate", items };
  }

  #concatenation(flags: Flags): Node {
    const items: Node[] = [];
    for (let char = this.#peek(); char !== undefined && char !== "|" && char !== ")"; char = this.#peek()) {
      const atom = this.#atom(flags);
      if (atom !== undefined) items.push(this.#repetitions(atom));
    }
    if (items.length === 0) return { kind: "empty" };
    return items.length === 1 ? (items[0] as Node) : { kind: "concat", items };
  }

  /** One atom, or undefined for a flag group `(?i)` that only changed `flags`. */
  #atom(flags: Flags): Node | undefined {
    const start = this.#pos;
    const char = this.#next();
    switch (char) {
      case "(":
        return this.#group(flags, start);
      case "[":
        return this.#bracketClass(flags, start);
      case ".":
        return { kind: "char", test: flags.dotAll ? () => true : (cp) => cp !== 0x0a };
      case "^":
        return { kind: "assert", assert: flags.multiLine ? "beginLine" : "beginText" };
      case "$":
        return { kind: "assert", assert: flags.multiLine ? "endLine" : "endText" };
      case "\\":
        return this.#escape(flags, start);
      case "*":
      case "+":
      case "?":
        throw this.#error(`missing argument to repetition operator ${char}`, start);
      case "{":
        this.#pos = start;
        if (this.#repeatCounts() !== undefined)
          throw this.#error("missing argument to repetition operator {", start);
        this.#pos = start + 1;
        return { kind: "char", test: literalTest(0x7b, flags) };
      default:
        return { kind: "char", test: literalTest(char.codePointAt(0) as number, flags) };
    }
  }

  #repetitions(atom: Node): Node {
    let node = atom;
    let repeated = false;
    for (;;) {
      const start = this.#pos;
      const char = this.#peek();
      let bounds: { min: number; max: number } | undefined;
      if (char === "*") bounds = { min: 0, max: Infinity };
      else if (char === "+") bounds = { min: 1, max: Infinity };
      else if (char === "?") bounds = { min: 0, max: 1 };
      else if (char === "{") bounds = this.#repeatCounts();
      if (bounds === undefined) {
        this.#pos = start;
        return node;
      }
      if (repeated) throw this.#error("invalid nested repetition operator", start);
      if (char !== "{") this.#pos++;
      if (this.#peek() === "?") this.#pos++; // lazy: the same set of whole-string matches
      node = { kind: "repeat", item: node, ...bounds };
      repeated = true;
    }
  }

  /** `{n}`, `{n,}` or `{n,m}` at the cursor (consumed), or undefined (cursor unchanged) if not one. */
  #repeatCounts(): { min: number; max: number } | undefined {
    const start = this.#pos;
    const rest = this.#chars.slice(start, start + 64).join("");
    const match = /^\{(\d+)(,(\d*))?\}/.exec(rest);
    if (!match) return undefined;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === "" ? Infinity : Number(match[3]);
    if (min > repeatCountMax || (max !== Infinity && (max > repeatCountMax || max < min)))
      throw this.#error(`invalid repeat count ${match[0]}`, start);
    this.#pos = start + [...match[0]].length;
    return { min, max };
  }

  #group(flags: Flags, start: number): Node | undefined {
    if (this.#peek() !== "?") return this.#groupBody(flags, start);
    this.#pos++;
    if (this.#peek() === "P" || this.#peek() === "<") {
      if (this.#peek() === "P") this.#pos++;
      if (this.#next() !== "<") throw this.#error("invalid or unsupported Perl syntax (?P", start);
      const nameStart = this.#pos;
      while (this.#peek() !== undefined && this.#peek() !== ">") this.#pos++;
      const name = this.#chars.slice(nameStart, this.#pos).join("");
      if (this.#peek() !== ">" || !/^[A-Za-z0-9_]+$/.test(name))
        throw this.#error("invalid named capture", start);
      this.#pos++;
      return this.#groupBody(flags, start);
    }
    // Flags: (?i) (?-s) (?im-sU) and the same followed by `:re)`.
    const changed = { ...flags };
    let negate = false;
    let any = false;
    for (;;) {
      const char = this.#next();
      if (char === ")" || char === ":") {
        if (!any && char === ")") throw this.#error("missing flags in (?)", start);
        if (negate && this.#chars[this.#pos - 2] === "-")
          throw this.#error("missing flag after - in group", start);
        if (char === ":") return this.#groupBody(changed, start);
        Object.assign(flags, changed);
        return undefined;
      }
      if (char === "-") {
        if (negate) throw this.#error("invalid or unsupported Perl syntax: double - in flags", start);
        negate = true;
        continue;
      }
      any = true;
      if (char === "i") changed.caseInsensitive = !negate;
      else if (char === "m") changed.multiLine = !negate;
      else if (char === "s") changed.dotAll = !negate;
      else if (char !== "U") throw this.#error(`invalid or unsupported Perl syntax (?${char}`, start);
    }
  }

  #groupBody(flags: Flags, start: number): Node {
    const node = this.#alternation(flags);
    if (this.#peek() !== ")") throw this.#error("missing closing )", start);
    this.#pos++;
    return node;
  }

  #escape(flags: Flags, start: number): Node {
    const char = this.#next();
    switch (char) {
      case "A":
        return { kind: "assert", assert: "beginText" };
      case "z":
        return { kind: "assert", assert: "endText" };
      case "b":
        return { kind: "assert", assert: "wordBoundary" };
      case "B":
        return { kind: "assert", assert: "notWordBoundary" };
      case "Q": {
        const items: Node[] = [];
        while (this.#peek() !== undefined && !(this.#peek() === "\\" && this.#peek(1) === "E")) {
          items.push({ kind: "char", test: literalTest(this.#next().codePointAt(0) as number, flags) });
        }
        if (this.#peek() === "\\") this.#pos += 2;
        return { kind: "concat", items };
      }
    }
    const perl = this.#perlClass(char, flags);
    if (perl) return perl;
    this.#pos = start;
    return { kind: "char", test: literalTest(this.#escapedCodePoint(), flags) };
  }

  #perlClass(char: string, flags: Flags): Node | undefined {
    const ranges = perlClasses[char.toLowerCase()];
    if (ranges === undefined) return undefined;
    // Go's \d \s \w are ASCII-only and ignore (?i): their sets are closed under ASCII case.
    return {
      kind: "char",
      test: classTest(ranges, char !== char.toLowerCase(), { ...flags, caseInsensitive: false }),
    };
  }

  /** The code point of a single-character escape at the cursor (`\n`, `\x41`, `\.`, `\012`). */
  #escapedCodePoint(): number {
    const start = this.#pos;
    this.#pos++; // the backslash
    const char = this.#next();
    if (char in simpleEscapes) return simpleEscapes[char] as number;
    if (char >= "0" && char <= "7") {
      // \1-\7 alone would be a backreference, which Go does not have.
      if (char !== "0" && !(this.#peek() !== undefined && /[0-7]/.test(this.#peek() as string)))
        throw this.#error(`invalid escape sequence \\${char} (no backreferences)`, start);
      let digits = char;
      while (digits.length < 3 && /[0-7]/.test(this.#peek() ?? "")) digits += this.#next();
      return Number.parseInt(digits, 8);
    }
    if (char === "x") {
      let hex: string;
      if (this.#peek() === "{") {
        this.#pos++;
        hex = "";
        while (this.#peek() !== undefined && this.#peek() !== "}") hex += this.#next();
        if (this.#peek() !== "}") throw this.#error("invalid escape sequence \\x{", start);
        this.#pos++;
      } else {
        hex = (this.#peek() ?? "") + (this.#peek(1) ?? "");
        this.#pos += 2;
        if (hex.length !== 2) throw this.#error("invalid escape sequence \\x", start);
      }
      const value = /^[0-9A-Fa-f]{1,8}$/.test(hex) ? Number.parseInt(hex, 16) : Number.NaN;
      if (!(value <= 0x10ffff) || (value >= 0xd800 && value <= 0xdfff))
        throw this.#error("invalid escape sequence \\x", start);
      return value;
    }
    if (char === "p" || char === "P")
      throw this.#error("Unicode classes \\p and \\P are not supported", start);
    const cp = char.codePointAt(0) as number;
    // Go allows escaping any ASCII punctuation, and nothing else.
    if (cp < 0x80 && !/[0-9A-Za-z]/.test(char)) return cp;
    throw this.#error(`invalid escape sequence \\${char}`, start);
  }

  /** `[...]` after its `[`: Go's rules, so `[]a]` holds `]` and a leading or trailing `-` is literal. */
  #bracketClass(flags: Flags, start: number): Node {
    const negated = this.#peek() === "^";
    if (negated) this.#pos++;
    const ranges: Range[] = [];
    let first = true;
    for (;;) {
      const char = this.#peek();
      if (char === undefined) throw this.#error("missing closing ]", start);
      if (char === "]" && !first) break;
      first = false;
      if (char === "[" && this.#peek(1) === ":") {
        const end = this.#chars.indexOf("]", this.#pos);
        const text = end < 0 ? "" : this.#chars.slice(this.#pos, end + 1).join("");
        const match = /^\[:(\^?)([a-z]+):\]$/.exec(text);
        const posix = match ? posixClasses[match[2] as string] : undefined;
        if (match && posix) {
          this.#pos = end + 1;
          ranges.push(...(match[1] ? complement(posix) : posix));
          continue;
        }
        if (match) throw this.#error(`invalid character class range ${text}`, this.#pos);
      }
      if (char === "\\") {
        const perl = perlClasses[(this.#peek(1) ?? "").toLowerCase()];
        if (perl) {
          const negatedPerl = this.#peek(1) !== this.#peek(1)?.toLowerCase();
          this.#pos += 2;
          ranges.push(...(negatedPerl ? complement(perl) : perl));
          continue;
        }
      }
      const low = this.#classChar(start);
      let high = low;
      if (this.#peek() === "-" && this.#peek(1) !== "]" && this.#peek(1) !== undefined) {
        this.#pos++;
        const rangeStart = this.#pos;
        high = this.#classChar(start);
        if (high < low) throw this.#error("invalid character class range", rangeStart);
      }
      ranges.push([low, high]);
    }
    this.#pos++;
    return { kind: "char", test: classTest(ranges, negated, flags) };
  }

  #classChar(start: number): number {
    const char = this.#peek();
    if (char === undefined) throw this.#error("missing closing ]", start);
    if (char === "\\") return this.#escapedCodePoint();
    this.#pos++;
    return char.codePointAt(0) as number;
  }
}

function complement(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const result: Range[] = [];
  let next = 0;
  for (const [low, high] of sorted) {
    if (low > next) result.push([next, low - 1]);
    next = Math.max(next, high + 1);
  }
  if (next <= 0x10ffff) result.push([next, 0x10ffff]);
  return result;
}

// The program: a flat array of instructions, each pointing at the next by index.
type Instruction =
  | { op: "char"; test: CharTest; next: number }
  | { op: "split"; next: number; alternative: number }
  | { op: "jump"; next: number }
  | { op: "assert"; assert: AssertKind; next: number }
  | { op: "match" };

class Compiler {
  readonly program: Instruction[] = [];

  #emit(instruction: Instruction): number {
    if (this.program.length >= programSizeMax)
      throw new RegexSyntaxError(`pattern too large: more than ${programSizeMax} instructions once compiled`);
    this.program.push(instruction);
    return this.program.length - 1;
  }

  /** Emits `node`; every instruction's pending `next` (-1) is patched to what follows. */
  compile(node: Node): void {
    switch (node.kind) {
      case "empty":
        return;
      case "char":
        this.#emit({ op: "char", test: node.test, next: this.program.length + 1 });
        return;
      case "assert":
        this.#emit({ op: "assert", assert: node.assert, next: this.program.length + 1 });
        return;
      case "concat":
        for (const item of node.items) this.compile(item);
        return;
      case "alternate": {
        const jumps: number[] = [];
        node.items.forEach((item, index) => {
          if (index === node.items.length - 1) {
            this.compile(item);
            return;
          }
          const split = this.#emit({ op: "split", next: this.program.length + 1, alternative: -1 });
          this.compile(item);
          jumps.push(this.#emit({ op: "jump", next: -1 }));
          (this.program[split] as { alternative: number }).alternative = this.program.length;
        });
        for (const jump of jumps) (this.program[jump] as { next: number }).next = this.program.length;
        return;
      }
      case "repeat":
        this.#repeat(node.item, node.min, node.max);
        return;
    }
  }

  #repeat(item: Node, min: number, max: number): void {
    for (let i = 0; i < min; i++) this.compile(item);
    if (max === Infinity) {
      // L: split(body, out); body; jump L
      const split = this.#emit({ op: "split", next: this.program.length + 1, alternative: -1 });
      this.compile(item);
      this.#emit({ op: "jump", next: split });
      (this.program[split] as { alternative: number }).alternative = this.program.length;
      return;
    }
    // Each optional copy may be skipped straight to the end: split(body, out) body ... out.
    const splits: number[] = [];
    for (let i = min; i < max; i++) {
      splits.push(this.#emit({ op: "split", next: this.program.length + 1, alternative: -1 }));
      this.compile(item);
    }
    for (const split of splits)
      (this.program[split] as { alternative: number }).alternative = this.program.length;
  }
}

/** Compiles `pattern` (Go syntax) for whole-string matching; throws RegexSyntaxError with a reason. */
export function compileLinearRegex(pattern: string): LinearRegex {
  const compiler = new Compiler();
  compiler.compile(new Parser(pattern).parse());
  compiler.program.push({ op: "match" });
  const program = compiler.program;
  return { matches: (text) => run(program, text) };
}

function run(program: readonly Instruction[], text: string): boolean {
  const codePoints: number[] = [];
  for (const char of text) codePoints.push(char.codePointAt(0) as number);
  const length = codePoints.length;
  // Threads are instruction indexes; `seen` stamps each with the step that added it, so a thread is
  // added at most once per step and an empty loop such as (a*)* cannot spin.
  const seen = new Int32Array(program.length).fill(-1);
  let current: number[] = [];
  let next: number[] = [];
  const stack: number[] = [];

  const add = (list: number[], pc: number, position: number): void => {
    stack.push(pc);
    while (stack.length > 0) {
      const at = stack.pop() as number;
      if (seen[at] === position) continue;
      seen[at] = position;
      const instruction = program[at] as Instruction;
      switch (instruction.op) {
        case "jump":
          stack.push(instruction.next);
          break;
        case "split":
          stack.push(instruction.alternative, instruction.next);
          break;
        case "assert":
          if (holds(instruction.assert, codePoints, position)) stack.push(instruction.next);
          break;
        default:
          list.push(at);
      }
    }
  };

  add(current, 0, 0);
  for (let position = 0; position < length; position++) {
    const cp = codePoints[position] as number;
    for (const pc of current) {
      const instruction = program[pc] as Instruction;
      if (instruction.op === "char" && instruction.test(cp)) add(next, instruction.next, position + 1);
    }
    [current, next] = [next, current];
    next.length = 0;
    if (current.length === 0) return false;
  }
  return current.some((pc) => (program[pc] as Instruction).op === "match");
}

function holds(assert: AssertKind, codePoints: readonly number[], position: number): boolean {
  const before = codePoints[position - 1];
  const after = codePoints[position];
  switch (assert) {
    case "beginText":
      return position === 0;
    case "endText":
      return position === codePoints.length;
    case "beginLine":
      return position === 0 || before === 0x0a;
    case "endLine":
      return position === codePoints.length || after === 0x0a;
    case "wordBoundary":
      return isWordChar(before) !== isWordChar(after);
    case "notWordBoundary":
      return isWordChar(before) === isWordChar(after);
  }
}
