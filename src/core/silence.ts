/**
 * Silences as Alertmanager has them: a list of label matchers (`=`, `!=`, `=~`, `!~`; all must match)
 * and a time window. While the window is open, an alert whose labels the matchers match notifies no
 * one of the silence's client. The labels of one of our alerts are `alertname` (its name), `severity`
 * (the value ingest kept in context when it mapped an unknown one, else lower-case: `critical`, `high`,
 * `medium`, `low`), `source`, and every context entry whose key is a label name; a missing label
 * matches as the empty string, as in Alertmanager.
 */

import { compileLinearRegex, type LinearRegex, RegexSyntaxError } from "./linear-regex.ts";
import { severityName } from "./severity.ts";
import { textProblem } from "./text.ts";

/** Alertmanager's API form of a matcher. */
export interface Matcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

export type SilenceState = "active" | "pending" | "expired";

export const silenceLimits = {
  matchersMax: 64,
  nameLengthMax: 256,
  valueLengthMax: 1024,
  createdByLengthMax: 256,
  commentLengthMax: 4096,
} as const;

/** Field path -> reason, e.g. `matchers[2].value` -> `invalid regular expression: ...`. */
export type Problems = [field: string, reason: string][];

const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const matcherFields = new Set(["name", "value", "isRegex", "isEqual"]);

export const isLabelName = (name: string): boolean =>
  name.length <= silenceLimits.nameLengthMax && labelNamePattern.test(name);

/** `=`, `!=`, `=~` or `!~`. */
export function operatorOf(matcher: Matcher): string {
  return `${matcher.isEqual ? "=" : "!"}${matcher.isRegex ? "~" : "="}`;
}

/** The matchers of an API body: each checked; `problems` names every bad field. */
export function parseMatchers(
  value: unknown,
  path = "matchers",
): { matchers: Matcher[]; problems: Problems } {
  const problems: Problems = [];
  const matchers: Matcher[] = [];
  if (!Array.isArray(value)) {
    problems.push([path, "required: an array of matchers {name, value, isRegex, isEqual}"]);
    return { matchers, problems };
  }
  if (value.length === 0) problems.push([path, "at least one matcher required"]);
  if (value.length > silenceLimits.matchersMax)
    problems.push([path, `at most ${silenceLimits.matchersMax} matchers`]);
  if (problems.length > 0) return { matchers, problems };
  value.forEach((item, index) => {
    const matcher = parseMatcher(item, `${path}[${index}]`, problems);
    if (matcher) matchers.push(matcher);
  });
  if (problems.length === 0 && matchers.every((matcher) => compileMatcher(matcher).test("")))
    problems.push([path, "at least one matcher must not match the empty string"]);
  return { matchers, problems };
}

function parseMatcher(item: unknown, path: string, problems: Problems): Matcher | undefined {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    problems.push([path, "expected a matcher object {name, value, isRegex, isEqual}"]);
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(item)) {
    if (!matcherFields.has(key)) problems.push([`${path}.${key}`.slice(0, 300), "unknown field"]);
  }
  const { name, value, isRegex, isEqual = true } = item as Record<string, unknown>;
  if (typeof name !== "string") problems.push([`${path}.name`, "required: a string"]);
  else if (!isLabelName(name))
    problems.push([
      `${path}.name`,
      `invalid label name ${JSON.stringify(name.slice(0, 64))}: [a-zA-Z_][a-zA-Z0-9_]*, at most ${silenceLimits.nameLengthMax} characters`,
    ]);
  if (typeof isRegex !== "boolean") problems.push([`${path}.isRegex`, "required: true or false"]);
  if (typeof isEqual !== "boolean") problems.push([`${path}.isEqual`, "expected true or false"]);
  if (typeof value !== "string") problems.push([`${path}.value`, "required: a string"]);
  else {
    const reason = valueProblem(value, isRegex === true);
    if (reason !== undefined) problems.push([`${path}.value`, reason]);
  }
  if (problems.length > before) return undefined;
  return {
    name: name as string,
    value: value as string,
    isRegex: isRegex as boolean,
    isEqual: isEqual as boolean,
  };
}

function valueProblem(value: string, isRegex: boolean): string | undefined {
  if (value.length > silenceLimits.valueLengthMax)
    return `longer than ${silenceLimits.valueLengthMax} characters`;
  const text = textProblem(value);
  if (text !== undefined) return text;
  if (!isRegex) return undefined;
  try {
    compileLinearRegex(value);
    return undefined;
  } catch (error) {
    if (!(error instanceof RegexSyntaxError)) throw error;
    return `invalid regular expression: ${error.message}`;
  }
}

/** A free-text field of a silence (createdBy, comment): why it cannot be stored, or undefined. */
export function silenceTextProblem(value: unknown, lengthMax: number): string | undefined {
  if (typeof value !== "string") return "required: a string";
  if (value.length > lengthMax) return `longer than ${lengthMax} characters`;
  return textProblem(value);
}

const matcherTextLengthMax = silenceLimits.nameLengthMax + silenceLimits.valueLengthMax + 64;
const matcherTextPattern = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*([\s\S]*?)\s*$/;

/**
 * One matcher in Alertmanager's text form (`alertname="Disk full"`, `env=~"prod|eu"`, `job!=api`), as in
 * the `filter` query parameter; the same rules as Alertmanager's labels.ParseMatcher. Throws an Error
 * whose message says what is wrong.
 */
/**
 * A list of matchers in Alertmanager's text form, `{severity="HIGH", source=~"db-.*"}` (braces
 * optional), as the rule service's API takes them: split on the commas outside quoted values.
 */
export function parseMatcherList(text: string): Matcher[] {
  if (text.length > silenceLimits.matchersMax * matcherTextLengthMax)
    throw new Error("bad matchers: too long");
  const inner = text.trim().replace(/^\{(.*)\}$/s, "$1");
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < inner.length; i++) {
    const char = inner[i] as string;
    if (char === "," && !quoted) {
      parts.push(current);
      current = "";
      continue;
    }
    current += char;
    if (char === "\\" && quoted && i < inner.length - 1) current += inner[++i];
    else if (char === '"') quoted = !quoted;
  }
  parts.push(current);
  const texts = parts.map((part) => part.trim()).filter((part) => part !== "");
  if (texts.length === 0) throw new Error("at least one matcher required");
  if (texts.length > silenceLimits.matchersMax)
    throw new Error(`at most ${silenceLimits.matchersMax} matchers`);
  return texts.map(parseMatcherText);
}

export function parseMatcherText(text: string): Matcher {
  if (text.length > matcherTextLengthMax)
    throw new Error(`bad matcher: longer than ${matcherTextLengthMax} characters`);
  const problem = textProblem(text);
  if (problem !== undefined) throw new Error(`bad matcher: ${problem}`);
  const match = matcherTextPattern.exec(text);
  if (!match) throw new Error(`bad matcher format: ${text.slice(0, 200)}`);
  const [, name, operator, rawWithQuote] = match as unknown as [string, string, string, string];
  const quoted = rawWithQuote.startsWith('"');
  const raw = quoted ? rawWithQuote.slice(1) : rawWithQuote;
  let value = "";
  let expectClosingQuote = quoted;
  const chars = [...raw];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i] as string;
    if (char === "\\" && i < chars.length - 1) {
      const escaped = chars[++i] as string;
      value += escaped === "n" ? "\n" : escaped === '"' || escaped === "\\" ? escaped : `\\${escaped}`;
    } else if (char === '"') {
      if (!expectClosingQuote || i < chars.length - 1)
        throw new Error(`matcher value contains an unescaped double quote: ${rawWithQuote.slice(0, 200)}`);
      expectClosingQuote = false;
    } else value += char;
  }
  if (expectClosingQuote)
    throw new Error(`matcher value contains an unescaped double quote: ${rawWithQuote.slice(0, 200)}`);
  const matcher = { name, value, isRegex: operator.endsWith("~"), isEqual: !operator.startsWith("!") };
  const reason = valueProblem(value, matcher.isRegex);
  if (reason !== undefined) throw new Error(`bad matcher ${name}: ${reason}`);
  return matcher;
}

/** A matcher ready to test label values; a regex is fully anchored, as Alertmanager's `^(?:re)$`. */
export interface CompiledMatcher {
  name: string;
  test(value: string): boolean;
}

/** Compiles one matcher; only for matchers already validated (a bad regex throws). */
export function compileMatcher(matcher: Matcher): CompiledMatcher {
  const { name, value, isRegex, isEqual } = matcher;
  if (!isRegex) return { name, test: isEqual ? (v) => v === value : (v) => v !== value };
  const regex: LinearRegex = compileLinearRegex(value);
  return { name, test: isEqual ? (v) => regex.matches(v) : (v) => !regex.matches(v) };
}

/** True when every matcher matches `labels` (a missing label is the empty string). */
export function silenceMatches(
  matchers: readonly CompiledMatcher[],
  labels: ReadonlyMap<string, string>,
): boolean {
  return matchers.every((matcher) => matcher.test(labels.get(matcher.name) ?? ""));
}

/**
 * Alertmanager's `filter` on silences: each filter matcher must match the value of the silence's
 * matcher of the same name (`filter=env="prod"` finds silences with a matcher `env...="prod"`).
 */
export function silenceMatchesFilter(
  silence: readonly Matcher[],
  filter: readonly CompiledMatcher[],
): boolean {
  const values = new Map(silence.map((matcher) => [matcher.name, matcher.value]));
  return filter.every((matcher) => {
    const value = values.get(matcher.name);
    return value !== undefined && matcher.test(value);
  });
}

/** Alertmanager's states: pending before startsAt, expired after endsAt, active in between. */
export function silenceState(startsAtMs: number, endsAtMs: number, nowMs: number): SilenceState {
  if (nowMs < startsAtMs) return "pending";
  if (nowMs > endsAtMs) return "expired";
  return "active";
}

/** Context entries that carry Alertmanager fields, not labels (see the ingest's alertmanager.ts). */
const nonLabelContextKeys = new Set(["generatorURL", "endsAt"]);

/** The label set silences see for an alert. */
export function alertLabels(alert: {
  severity: number;
  source: string;
  name: string;
  context: Readonly<Record<string, string>>;
}): Map<string, string> {
  const labels = new Map<string, string>();
  for (const [key, value] of Object.entries(alert.context)) {
    if (labelNamePattern.test(key) && !nonLabelContextKeys.has(key)) labels.set(key, value);
  }
  labels.set("alertname", alert.name);
  // Ingest keeps a severity label it could not map (`none`, `page`...) in context: what Alertmanager sees.
  labels.set("severity", alert.context.severity ?? severityName(alert.severity).toLowerCase());
  labels.set("source", alert.source);
  return labels;
}

/** An active or pending silence as the evaluator receives it (in the rules snapshot). */
export interface OpenSilence {
  id: string;
  clientId: string;
  startsAtMs: number;
  endsAtMs: number;
  matchers: readonly Matcher[];
}

interface CompiledSilence {
  id: string;
  startsAtMs: number;
  endsAtMs: number;
  matchers: CompiledMatcher[];
}

/**
 * The open silences per client, compiled once per snapshot. Most clients have none, so the evaluator
 * asks `has` first and builds an alert's labels only for a client that has some.
 */
export class SilenceBook {
  readonly #byClient = new Map<string, CompiledSilence[]>();

  /** Silences are validated by the API; one whose regex does not compile here is a bug (throws). */
  constructor(silences: readonly OpenSilence[]) {
    for (const silence of silences) {
      const compiled = { ...silence, matchers: silence.matchers.map(compileMatcher) };
      const list = this.#byClient.get(silence.clientId);
      if (list) list.push(compiled);
      else this.#byClient.set(silence.clientId, [compiled]);
    }
  }

  has(clientId: string): boolean {
    return this.#byClient.has(clientId);
  }

  /** The id of an active silence of `clientId` matching `labels` at `nowMs`, or undefined. */
  silencedBy(clientId: string, labels: ReadonlyMap<string, string>, nowMs: number): string | undefined {
    for (const silence of this.#byClient.get(clientId) ?? []) {
      if (silenceState(silence.startsAtMs, silence.endsAtMs, nowMs) !== "active") continue;
      if (silenceMatches(silence.matchers, labels)) return silence.id;
    }
    return undefined;
  }
}
