/**
 * The rules snapshot kept in Redis (`RulesSnapshot` in proto/alerting/v1/rule.proto): columnar, strings
 * interned with index 0 = "*", ids as raw 16-byte UUIDs. Rule i is element i of every rule column.
 *
 * The encoder and decoder are hand-written for this one message: @bufbuild/protobuf's toBinary/fromBinary
 * measured ~150-340 ms / ~100-175 ms on 1M rules, most of the 1 s budget, against ~20 ms here.
 * snapshot.test.ts proves the bytes equal toBinary's and decode equals fromBinary's.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeliveryPolicySchema } from "../gen/alerting/v1/alert_pb.ts";
import {
  SilenceMatcherSchema,
  type SnapshotRulePolicy,
  SnapshotRulePolicySchema,
  type SnapshotSilence,
  SnapshotSilenceSchema,
} from "../gen/alerting/v1/rule_pb.ts";
import { isSharedScopeName } from "./matching/scope.ts";
import type { Grant, Rule } from "./matching/types.ts";
import { isDefaultRulePolicy, type RulePolicy, rulePolicyProblem } from "./policy.ts";
import { SEVERITY_MAX, SEVERITY_WILDCARD } from "./severity.ts";
import { type OpenSilence, parseMatchers } from "./silence.ts";
import {
  ProtoReader,
  varintSize,
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
  WireError,
  writeVarint32,
} from "./wire.ts";

export const SNAPSHOT_SCHEMA_VERSION = 1;
export const UUID_BYTES = 16;

/** A RulesSnapshot, its repeated uint32 fields held as typed arrays. */
export interface Snapshot {
  schemaVersion: number;
  version: bigint;
  builtAtUnixMs: bigint;
  strings: string[];
  clientIds: Uint8Array;
  ruleIds: Uint8Array;
  ruleClient: Uint32Array;
  ruleSeverity: Uint32Array;
  ruleSource: Uint32Array;
  ruleName: Uint32Array;
  /** Shared-scope grants: grant i gives client grantClient[i] the scope `shared:<grantScopes[i]>`. */
  grantScopes: string[];
  grantClient: Uint32Array;
  /** Silences not yet ended, in id order (field 13, one SnapshotSilence message each). */
  silences: OpenSilence[];
  /** The rules whose settings are not the defaults, in rule id order (field 14, one SnapshotRulePolicy each). */
  policies: RulePolicyEntry[];
}

export interface RulePolicyEntry {
  ruleId: string;
  policy: RulePolicy;
}

/** A corrupt, partial or incompatible snapshot. */
export class SnapshotError extends Error {
  constructor(readonly reason: string) {
    super(`invalid rules snapshot: ${reason}`);
    this.name = "SnapshotError";
  }
}

/**
 * Columnar form of `rules` and `grants`. Rules and grants must be valid (UUID ids, severity 0..4, shared scope
 * names): anything else is a bug. A grant to a client without rules is left out, as it could match nothing.
 */
export function buildSnapshot(
  rules: readonly Rule[],
  version: bigint,
  builtAtUnixMs: bigint,
  grants: readonly Grant[] = [],
  silences: readonly OpenSilence[] = [],
  policies: readonly RulePolicyEntry[] = [],
): Snapshot {
  const builder = new SnapshotBuilder(rules.length);
  const ids = new Uint8Array(2 * UUID_BYTES); // rule id, then client id
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as Rule;
    if (!parseUuid(rule.ruleId, ids, 0)) throw new RangeError(`rule ${i}: rule_id is not a UUID`);
    if (!parseUuid(rule.clientId, ids, UUID_BYTES))
      throw new RangeError(`rule ${i}: client_id is not a UUID`);
    builder.add(
      ids,
      0,
      UUID_BYTES,
      rule.severity,
      builder.internString(rule.source),
      builder.internString(rule.name),
    );
  }
  grants.forEach((grant, i) => {
    if (!parseUuid(grant.clientId, ids, 0)) throw new RangeError(`grant ${i}: client_id is not a UUID`);
    builder.addGrant(grant.scope, ids, 0);
  });
  return builder.build(version, builtAtUnixMs, silences, policies);
}

const STAR_UTF8 = new Uint8Array([42]); // "*"

/**
 * Builds a Snapshot one rule at a time, from ids and strings given as bytes, so that a caller streaming
 * database rows (rule-source's COPY) makes no object or string per row: clients are interned by their
 * 16 bytes, strings by their UTF-8 bytes, and a string is decoded once, when build() is called. Grants
 * are added after the rules, so that a grant to a client without rules can be left out.
 */
export class SnapshotBuilder {
  #count = 0;
  #ruleIds: Uint8Array;
  #ruleClient: Uint32Array;
  #ruleSeverity: Uint32Array;
  #ruleSource: Uint32Array;
  #ruleName: Uint32Array;
  readonly #clients: ByteInterner;
  readonly #strings = new ByteInterner(64, 16);
  #utf8 = new Uint8Array(256);
  readonly #grantScopes: string[] = [];
  readonly #grantClient: number[] = [];

  /** `capacityRules` only sizes the first allocation; the builder grows past it. */
  constructor(capacityRules = 1024) {
    const capacity = Math.max(16, capacityRules);
    this.#ruleIds = new Uint8Array(capacity * UUID_BYTES);
    this.#ruleClient = new Uint32Array(capacity);
    this.#ruleSeverity = new Uint32Array(capacity);
    this.#ruleSource = new Uint32Array(capacity);
    this.#ruleName = new Uint32Array(capacity);
    this.#clients = new ByteInterner(capacity, UUID_BYTES);
    this.#strings.intern(STAR_UTF8, 0, 1); // strings[0] = "*"
  }

  get ruleCount(): number {
    return this.#count;
  }

  /** The string index of the UTF-8 text in bytes [start, end), for add(). */
  internUtf8(bytes: Uint8Array, start: number, end: number): number {
    return this.#strings.intern(bytes, start, end);
  }

  /** internUtf8 of a JS string. */
  internString(value: string): number {
    if (this.#utf8.length < value.length * 3) this.#utf8 = new Uint8Array(value.length * 3);
    const { written } = encoder.encodeInto(value, this.#utf8);
    return this.#strings.intern(this.#utf8, 0, written);
  }

  /**
   * Adds a rule whose id and client id are the 16 bytes at `ruleIdAt` and `clientIdAt` of `ids`, and
   * whose source and name are indexes from internUtf8 or internString.
   */
  add(ids: Uint8Array, ruleIdAt: number, clientIdAt: number, severity: number, source: number, name: number) {
    const i = this.#count;
    if (!(severity >= SEVERITY_WILDCARD && severity <= SEVERITY_MAX)) {
      throw new RangeError(`rule ${i}: severity ${severity} is not 0..4`);
    }
    if (i === this.#ruleClient.length) this.#grow();
    for (let b = 0; b < UUID_BYTES; b++) this.#ruleIds[i * UUID_BYTES + b] = ids[ruleIdAt + b] as number;
    this.#ruleClient[i] = this.#clients.intern(ids, clientIdAt, clientIdAt + UUID_BYTES);
    this.#ruleSeverity[i] = severity;
    this.#ruleSource[i] = source;
    this.#ruleName[i] = name;
    this.#count = i + 1;
  }

  /**
   * Grants the shared scope named `scope` to the client whose 16 id bytes are at `clientIdAt` of `ids`, if
   * that client has rules (added before); returns whether it has. Each (scope, client) once.
   */
  addGrant(scope: string, ids: Uint8Array, clientIdAt: number): boolean {
    if (!isSharedScopeName(scope)) throw new RangeError(`grant ${this.#grantScopes.length}: bad scope name`);
    const client = this.#clients.find(ids, clientIdAt, clientIdAt + UUID_BYTES);
    if (client < 0) return false;
    this.#grantScopes.push(scope);
    this.#grantClient.push(client);
    return true;
  }

  build(
    version: bigint,
    builtAtUnixMs: bigint,
    silences: readonly OpenSilence[] = [],
    policies: readonly RulePolicyEntry[] = [],
  ): Snapshot {
    const count = this.#count;
    const strings = this.#strings;
    return {
      schemaVersion: SNAPSHOT_SCHEMA_VERSION,
      version,
      builtAtUnixMs,
      strings: Array.from({ length: strings.count }, (_, i) => decoder.decode(strings.entry(i))),
      clientIds: this.#clients.bytes(),
      ruleIds: this.#ruleIds.slice(0, count * UUID_BYTES),
      ruleClient: this.#ruleClient.slice(0, count),
      ruleSeverity: this.#ruleSeverity.slice(0, count),
      ruleSource: this.#ruleSource.slice(0, count),
      ruleName: this.#ruleName.slice(0, count),
      grantScopes: this.#grantScopes.slice(),
      grantClient: Uint32Array.from(this.#grantClient),
      silences: [...silences],
      policies: policiesOfRules(this.#ruleIds.subarray(0, count * UUID_BYTES), policies),
    };
  }

  #grow(): void {
    const capacity = this.#ruleClient.length * 2;
    this.#ruleIds = resized(this.#ruleIds, capacity * UUID_BYTES);
    this.#ruleClient = resized(this.#ruleClient, capacity);
    this.#ruleSeverity = resized(this.#ruleSeverity, capacity);
    this.#ruleSource = resized(this.#ruleSource, capacity);
    this.#ruleName = resized(this.#ruleName, capacity);
  }
}

/**
 * The policies whose rule is among `ruleIds` (a rule added or disabled between the reads of rules and of
 * policies is in one but not the other: the next build has both). One pass over the ids with a cheap
 * hash, so a million rules with few policies cost little.
 */
function policiesOfRules(ruleIds: Uint8Array, policies: readonly RulePolicyEntry[]): RulePolicyEntry[] {
  if (policies.length === 0) return [];
  const wanted = new Map(policies.map((entry) => [entry.ruleId, entry]));
  const hashes = new Set<number>();
  const id = new Uint8Array(UUID_BYTES);
  for (const ruleId of wanted.keys()) {
    if (parseUuid(ruleId, id, 0)) hashes.add(fnv1a(id, 0, UUID_BYTES));
  }
  const kept: RulePolicyEntry[] = [];
  for (let at = 0; at < ruleIds.length; at += UUID_BYTES) {
    if (!hashes.has(fnv1a(ruleIds, at, at + UUID_BYTES))) continue;
    const entry = wanted.get(formatUuid(ruleIds, at));
    if (entry !== undefined) kept.push(entry);
  }
  return kept.sort((x, y) => (x.ruleId < y.ruleId ? -1 : x.ruleId > y.ruleId ? 1 : 0));
}

function resized<T extends Uint8Array | Uint32Array | Int32Array>(array: T, length: number): T {
  const larger = new (array.constructor as new (length: number) => T)(length);
  larger.set(array);
  return larger;
}

/**
 * Byte strings interned in order of first appearance, in an open-addressing table on typed arrays: a Map
 * keyed by text took ~1.8 s of a ~4 s build of 1M rules for the client ids alone (each lookup touches two
 * scattered 36-char strings), and a known value is found here without allocating.
 */
class ByteInterner {
  count = 0;
  #pool: Uint8Array;
  #used = 0;
  /** Entry i is #pool[#ends[i - 1] (0 for i = 0), #ends[i]). */
  #ends: Int32Array;
  #hashes: Int32Array;
  /** Entry index + 1; 0 = empty. At most half full, so probe chains stay short. */
  #slots: Int32Array;

  constructor(capacityEntries: number, bytesPerEntry: number) {
    this.#pool = new Uint8Array(capacityEntries * bytesPerEntry);
    this.#ends = new Int32Array(capacityEntries);
    this.#hashes = new Int32Array(capacityEntries);
    let slots = 16;
    while (slots < capacityEntries * 2) slots *= 2;
    this.#slots = new Int32Array(slots);
  }

  /** The index of bytes[start, end): an existing entry's, or a new one's. */
  intern(bytes: Uint8Array, start: number, end: number): number {
    const hash = fnv1a(bytes, start, end);
    const slot = this.#probe(hash, bytes, start, end);
    const entry = this.#slots[slot] as number;
    if (entry !== 0) return entry - 1;
    const index = this.count++;
    const length = end - start;
    if (index === this.#ends.length) {
      this.#ends = resized(this.#ends, index * 2);
      this.#hashes = resized(this.#hashes, index * 2);
    }
    if (this.#used + length > this.#pool.length) {
      this.#pool = resized(this.#pool, Math.max(this.#pool.length * 2, this.#used + length));
    }
    for (let b = 0; b < length; b++) this.#pool[this.#used + b] = bytes[start + b] as number;
    this.#used += length;
    this.#ends[index] = this.#used;
    this.#hashes[index] = hash;
    this.#slots[slot] = index + 1;
    if (this.count * 2 > this.#slots.length) this.#rehash();
    return index;
  }

  /** The index of bytes[start, end), or -1 when it was never interned. */
  find(bytes: Uint8Array, start: number, end: number): number {
    return (this.#slots[this.#probe(fnv1a(bytes, start, end), bytes, start, end)] as number) - 1;
  }

  entry(index: number): Uint8Array {
    return this.#pool.subarray(index === 0 ? 0 : (this.#ends[index - 1] as number), this.#ends[index]);
  }

  /** Every entry's bytes, back to back. */
  bytes(): Uint8Array {
    return this.#pool.slice(0, this.#used);
  }

  /** The slot holding bytes[start, end), or the empty slot where it belongs. */
  #probe(hash: number, bytes: Uint8Array, start: number, end: number): number {
    const mask = this.#slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.#slots[slot] as number;
      if (entry === 0 || (this.#hashes[entry - 1] === hash && this.#equals(entry - 1, bytes, start, end))) {
        return slot;
      }
    }
  }

  #equals(index: number, bytes: Uint8Array, start: number, end: number): boolean {
    const from = index === 0 ? 0 : (this.#ends[index - 1] as number);
    if ((this.#ends[index] as number) - from !== end - start) return false;
    for (let b = 0; b < end - start; b++) if (this.#pool[from + b] !== bytes[start + b]) return false;
    return true;
  }

  #rehash(): void {
    this.#slots = new Int32Array(this.#slots.length * 2);
    const mask = this.#slots.length - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = (this.#hashes[index] as number) & mask;
      while (this.#slots[slot] !== 0) slot = (slot + 1) & mask;
      this.#slots[slot] = index + 1;
    }
  }
}

/** FNV-1a as an int32, the form an Int32Array stores (an empty input would otherwise stay unsigned). */
function fnv1a(bytes: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash;
}

/** The rule list of a valid snapshot (as returned by decodeSnapshot or buildSnapshot). */
export function snapshotRules(snapshot: Snapshot): Rule[] {
  const { strings, ruleClient, ruleSeverity, ruleSource, ruleName } = snapshot;
  const clients = Array.from({ length: snapshot.clientIds.length / UUID_BYTES }, (_, i) =>
    formatUuid(snapshot.clientIds, i * UUID_BYTES),
  );
  const rules = new Array<Rule>(ruleClient.length);
  for (let i = 0; i < rules.length; i++) {
    rules[i] = {
      ruleId: formatUuid(snapshot.ruleIds, i * UUID_BYTES),
      clientId: clients[ruleClient[i] as number] as string,
      severity: ruleSeverity[i] as number,
      source: strings[ruleSource[i] as number] as string,
      name: strings[ruleName[i] as number] as string,
    };
  }
  return rules;
}

/** The grant list of a valid snapshot, in its order. */
export function snapshotGrants(snapshot: Snapshot): Grant[] {
  return snapshot.grantScopes.map((scope, i) => ({
    scope,
    clientId: formatUuid(snapshot.clientIds, (snapshot.grantClient[i] as number) * UUID_BYTES),
  }));
}

/** Whether two valid snapshots hold the same grants, whatever their order and interning. */
export function sameGrants(a: Snapshot, b: Snapshot): boolean {
  if (a.grantScopes.length !== b.grantScopes.length) return false;
  // Grants are few (one per shared scope and client): text keys are cheap enough here.
  const keysOf = (snapshot: Snapshot) =>
    new Set(snapshotGrants(snapshot).map((g) => `${g.scope} ${g.clientId}`));
  const keysA = keysOf(a);
  const keysB = keysOf(b);
  if (keysA.size !== keysB.size) return false;
  for (const key of keysA) if (!keysB.has(key)) return false;
  return true;
}

/**
 * Whether two valid snapshots hold the same rules, whatever their order and interning (the rule-updater's
 * check of the stored snapshot against a fresh build). Rule ids are unique in both (the table's primary
 * key); a repeated one counts as a difference unless both list their rules in the same order.
 */
export function sameRules(a: Snapshot, b: Snapshot): boolean {
  const count = a.ruleClient.length;
  if (b.ruleClient.length !== count) return false;
  // Two scans of an unchanged table usually return its rows in the same order: a sequential pass then
  // does (~90 ms at 1M rules), without the id table below (0.5-0.8 s: a cache miss per lookup).
  if (sameBytes(a.ruleIds, b.ruleIds)) {
    for (let i = 0; i < count; i++) if (!sameRule(a, i, b, i)) return false;
    return true;
  }
  const ids = new ByteInterner(count, UUID_BYTES);
  for (let i = 0; i < count; i++) {
    if (ids.intern(a.ruleIds, i * UUID_BYTES, (i + 1) * UUID_BYTES) !== i) return false;
  }
  const matched = new Uint8Array(count);
  for (let j = 0; j < count; j++) {
    const i = ids.find(b.ruleIds, j * UUID_BYTES, (j + 1) * UUID_BYTES);
    if (i < 0 || matched[i] === 1 || !sameRule(a, i, b, j)) return false;
    matched[i] = 1;
  }
  return true;
}

/** Whether rule i of `a` and rule j of `b` have the same client, severity, source and name. */
function sameRule(a: Snapshot, i: number, b: Snapshot, j: number): boolean {
  if (
    a.ruleSeverity[i] !== b.ruleSeverity[j] ||
    a.strings[a.ruleSource[i] as number] !== b.strings[b.ruleSource[j] as number] ||
    a.strings[a.ruleName[i] as number] !== b.strings[b.ruleName[j] as number]
  ) {
    return false;
  }
  const clientA = (a.ruleClient[i] as number) * UUID_BYTES;
  const clientB = (b.ruleClient[j] as number) * UUID_BYTES;
  for (let k = 0; k < UUID_BYTES; k++)
    if (a.clientIds[clientA + k] !== b.clientIds[clientB + k]) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Throws SnapshotError unless the columns line up, every index is in range, every client and string is used
 * by some rule, and every grant names a shared scope and a client once.
 */
function validateSnapshot(snapshot: Snapshot): void {
  const fail = (reason: string): never => {
    throw new SnapshotError(reason);
  };
  const { strings, clientIds, ruleIds, ruleClient, ruleSeverity, ruleSource, ruleName } = snapshot;
  if (snapshot.schemaVersion !== SNAPSHOT_SCHEMA_VERSION) {
    fail(`schema_version ${snapshot.schemaVersion}, expected ${SNAPSHOT_SCHEMA_VERSION}`);
  }
  if (strings[0] !== "*") fail('strings[0] must be "*"');
  if (strings.indexOf("*", 1) > 0) fail('"*" appears in strings after index 0');
  if (clientIds.length % UUID_BYTES !== 0)
    fail(`client_ids length ${clientIds.length} is not a multiple of 16`);
  if (ruleIds.length % UUID_BYTES !== 0) fail(`rule_ids length ${ruleIds.length} is not a multiple of 16`);
  const count = ruleIds.length / UUID_BYTES;
  const columns = {
    rule_client: ruleClient,
    rule_severity: ruleSeverity,
    rule_source: ruleSource,
    rule_name: ruleName,
  };
  for (const [field, column] of Object.entries(columns)) {
    if (column.length !== count) fail(`${field} has ${column.length} entries, rule_ids has ${count}`);
  }
  const clientCount = clientIds.length / UUID_BYTES;
  // The builder interns only what rules use, so an unused client or string means a snapshot cut short
  // at a field boundary, which protobuf alone cannot tell from a complete one.
  const clientUsed = new Uint8Array(clientCount);
  const stringUsed = new Uint8Array(strings.length);
  stringUsed[0] = 1;
  for (let i = 0; i < count; i++) {
    const client = ruleClient[i] as number;
    const severity = ruleSeverity[i] as number;
    const source = ruleSource[i] as number;
    const name = ruleName[i] as number;
    if (client >= clientCount) fail(`rule ${i}: rule_client ${client} out of range (${clientCount} clients)`);
    if (severity > SEVERITY_MAX) fail(`rule ${i}: rule_severity ${severity} out of range`);
    if (source >= strings.length) fail(`rule ${i}: rule_source ${source} out of range`);
    if (name >= strings.length) fail(`rule ${i}: rule_name ${name} out of range`);
    if (severity === SEVERITY_WILDCARD && source === 0 && name === 0) fail(`rule ${i}: * on every field`);
    clientUsed[client] = 1;
    stringUsed[source] = 1;
    stringUsed[name] = 1;
  }
  if (clientUsed.indexOf(0) >= 0) fail(`client ${clientUsed.indexOf(0)} has no rules`);
  if (stringUsed.indexOf(0) >= 0) fail(`strings[${stringUsed.indexOf(0)}] is used by no rule`);
  const { grantScopes, grantClient } = snapshot;
  if (grantClient.length !== grantScopes.length) {
    fail(`grant_client has ${grantClient.length} entries, grant_scopes has ${grantScopes.length}`);
  }
  const grants = new Set<string>();
  for (let i = 0; i < grantScopes.length; i++) {
    const scope = grantScopes[i] as string;
    const client = grantClient[i] as number;
    if (!isSharedScopeName(scope)) fail(`grant ${i}: ${JSON.stringify(scope)} is not a shared scope name`);
    if (client >= clientCount)
      fail(`grant ${i}: grant_client ${client} out of range (${clientCount} clients)`);
    const key = `${scope} ${client}`;
    if (grants.has(key)) fail(`grant ${i}: repeats scope ${scope} for client ${client}`);
    grants.add(key);
  }
  snapshot.silences.forEach((silence, i) => {
    if (!uuidPattern.test(silence.id) || !uuidPattern.test(silence.clientId))
      fail(`silence ${i}: id and client_id must be UUIDs`);
    if (!(silence.startsAtMs <= silence.endsAtMs)) fail(`silence ${i}: starts after it ends`);
    const [problem] = parseMatchers(silence.matchers).problems;
    if (problem) fail(`silence ${i}: ${problem[0]}: ${problem[1]}`);
  });
  validatePolicies(snapshot, fail);
}

function validatePolicies(snapshot: Snapshot, fail: (reason: string) => never): void {
  const ruleIds = new Set(
    Array.from({ length: snapshot.ruleClient.length }, (_, i) =>
      formatUuid(snapshot.ruleIds, i * UUID_BYTES),
    ),
  );
  const seen = new Set<string>();
  snapshot.policies.forEach(({ ruleId, policy }, i) => {
    if (!ruleIds.has(ruleId)) fail(`policy ${i}: rule ${JSON.stringify(ruleId)} is not in rule_ids`);
    if (seen.has(ruleId)) fail(`policy ${i}: repeats rule ${ruleId}`);
    seen.add(ruleId);
    if (isDefaultRulePolicy(policy)) fail(`policy ${i}: holds only defaults`);
    const problem = rulePolicyProblem(policy, false);
    if (problem !== undefined) fail(`policy ${i}: ${problem}`);
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Protobuf bytes, identical to toBinary(RulesSnapshotSchema, ...) of the same snapshot. */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const strings = snapshot.strings.map((value) => encoder.encode(value));
  const grantScopes = snapshot.grantScopes.map((value) => encoder.encode(value));
  const columns = [snapshot.ruleClient, snapshot.ruleSeverity, snapshot.ruleSource, snapshot.ruleName];
  const columnSizes = columns.map(packedSize);
  const grantClientSize = packedSize(snapshot.grantClient);
  // Few, and nested: the generated encoder is fast enough for them.
  const silences = snapshot.silences.map((silence) =>
    toBinary(SnapshotSilenceSchema, silenceMessage(silence)),
  );
  const policies = snapshot.policies.map((entry) => toBinary(SnapshotRulePolicySchema, policyMessage(entry)));
  // proto3 leaves out fields holding their default (0, empty), as toBinary does.
  let size = 0;
  if (snapshot.schemaVersion !== 0) size += 1 + varintSize(snapshot.schemaVersion);
  if (snapshot.version !== 0n) size += 1 + int64Size(snapshot.version);
  if (snapshot.builtAtUnixMs !== 0n) size += 1 + int64Size(snapshot.builtAtUnixMs);
  for (const value of strings) size += lengthDelimitedSize(value.length);
  if (snapshot.clientIds.length > 0) size += lengthDelimitedSize(snapshot.clientIds.length);
  if (snapshot.ruleIds.length > 0) size += lengthDelimitedSize(snapshot.ruleIds.length);
  for (const columnSize of columnSizes) if (columnSize > 0) size += lengthDelimitedSize(columnSize);
  for (const value of grantScopes) size += lengthDelimitedSize(value.length);
  if (grantClientSize > 0) size += lengthDelimitedSize(grantClientSize);
  for (const value of silences) size += lengthDelimitedSize(value.length);
  for (const value of policies) size += lengthDelimitedSize(value.length);

  const out = new Uint8Array(size);
  let pos = 0;
  if (snapshot.schemaVersion !== 0) {
    out[pos++] = (1 << 3) | WIRE_VARINT;
    pos = writeVarint32(out, pos, snapshot.schemaVersion);
  }
  if (snapshot.version !== 0n) {
    out[pos++] = (2 << 3) | WIRE_VARINT;
    pos = writeInt64(out, pos, snapshot.version);
  }
  if (snapshot.builtAtUnixMs !== 0n) {
    out[pos++] = (3 << 3) | WIRE_VARINT;
    pos = writeInt64(out, pos, snapshot.builtAtUnixMs);
  }
  for (const value of strings) pos = writeBytes(out, pos, 4, value);
  if (snapshot.clientIds.length > 0) pos = writeBytes(out, pos, 5, snapshot.clientIds);
  if (snapshot.ruleIds.length > 0) pos = writeBytes(out, pos, 6, snapshot.ruleIds);
  columns.forEach((column, i) => {
    pos = writePacked(out, pos, 7 + i, column, columnSizes[i] as number);
  });
  for (const value of grantScopes) pos = writeBytes(out, pos, 11, value);
  pos = writePacked(out, pos, 12, snapshot.grantClient, grantClientSize);
  for (const value of silences) pos = writeBytes(out, pos, 13, value);
  for (const value of policies) pos = writeBytes(out, pos, 14, value);
  if (pos !== size) throw new Error(`encodeSnapshot: wrote ${pos} bytes, sized ${size}`);
  return out;
}

/**
 * Parses and validates snapshot bytes; throws SnapshotError on anything malformed. Columns must be packed
 * (what every proto3 encoder writes); unknown fields are skipped for forward compatibility.
 */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  let snapshot: Snapshot;
  try {
    snapshot = parseSnapshot(bytes);
  } catch (error) {
    if (error instanceof WireError) throw new SnapshotError(error.message);
    throw error;
  }
  validateSnapshot(snapshot);
  return snapshot;
}

/** The packed columns by field number - 7; field 11 (grant_scopes) is not one. */
const COLUMN_NAMES = ["rule_client", "rule_severity", "rule_source", "rule_name", undefined, "grant_client"];

function parseSnapshot(bytes: Uint8Array): Snapshot {
  const reader = new ProtoReader(bytes);
  const snapshot: Snapshot = {
    schemaVersion: 0,
    version: 0n,
    builtAtUnixMs: 0n,
    strings: [],
    clientIds: new Uint8Array(0),
    ruleIds: new Uint8Array(0),
    ruleClient: new Uint32Array(0),
    ruleSeverity: new Uint32Array(0),
    ruleSource: new Uint32Array(0),
    ruleName: new Uint32Array(0),
    grantScopes: [],
    grantClient: new Uint32Array(0),
    silences: [],
    policies: [],
  };
  // [start, end) of each occurrence of the packed columns (repeated occurrences concatenate).
  const columnRanges: number[][] = COLUMN_NAMES.map(() => []);
  while (!reader.done()) {
    const tag = reader.tag("RulesSnapshot");
    const fieldNumber = tag >>> 3;
    const wireType = tag & 7;
    const expected = fieldNumber <= 3 ? WIRE_VARINT : fieldNumber <= 14 ? WIRE_LENGTH_DELIMITED : wireType;
    if (wireType !== expected) {
      const field = COLUMN_NAMES[fieldNumber - 7] ?? `field ${fieldNumber}`;
      throw new SnapshotError(`${field}: wire type ${wireType}, expected ${expected}`);
    }
    if (fieldNumber === 1) snapshot.schemaVersion = reader.varint32("schema_version");
    else if (fieldNumber === 2 || fieldNumber === 3) {
      reader.varint64(fieldNumber === 2 ? "version" : "built_at_unix_ms");
      if (fieldNumber === 2) snapshot.version = reader.int64();
      else snapshot.builtAtUnixMs = reader.int64();
    } else if (fieldNumber <= 14) {
      const end = reader.lengthDelimited(`field ${fieldNumber}`);
      if (fieldNumber === 13) snapshot.silences.push(parseSilence(bytes.subarray(reader.pos, end)));
      else if (fieldNumber === 14) snapshot.policies.push(parsePolicy(bytes.subarray(reader.pos, end)));
      else if (fieldNumber === 4) snapshot.strings.push(decoder.decode(bytes.subarray(reader.pos, end)));
      else if (fieldNumber === 11) snapshot.grantScopes.push(decoder.decode(bytes.subarray(reader.pos, end)));
      else if (fieldNumber === 5) snapshot.clientIds = bytes.slice(reader.pos, end);
      else if (fieldNumber === 6) snapshot.ruleIds = bytes.slice(reader.pos, end);
      else columnRanges[fieldNumber - 7]?.push(reader.pos, end);
      reader.pos = end;
    } else reader.skip(tag, "RulesSnapshot");
  }
  snapshot.ruleClient = readPacked(bytes, columnRanges[0] as number[], "rule_client");
  snapshot.ruleSeverity = readPacked(bytes, columnRanges[1] as number[], "rule_severity");
  snapshot.ruleSource = readPacked(bytes, columnRanges[2] as number[], "rule_source");
  snapshot.ruleName = readPacked(bytes, columnRanges[3] as number[], "rule_name");
  snapshot.grantClient = readPacked(bytes, columnRanges[5] as number[], "grant_client");
  return snapshot;
}

function readPacked(bytes: Uint8Array, ranges: readonly number[], field: string): Uint32Array {
  // Every complete varint ends in exactly one byte below 0x80, so this bounds the count from above.
  let count = 0;
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r] as number; i < (ranges[r + 1] as number); i++)
      if ((bytes[i] as number) < 0x80) count++;
  }
  const column = new Uint32Array(count);
  let next = 0;
  for (let r = 0; r < ranges.length; r += 2) {
    const reader = new ProtoReader(bytes, ranges[r + 1]);
    reader.pos = ranges[r] as number;
    while (!reader.done()) column[next++] = reader.varint32(field);
  }
  return column;
}

function packedSize(column: Uint32Array): number {
  let size = 0;
  for (let i = 0; i < column.length; i++) size += varintSize(column[i] as number);
  return size;
}

/** A packed column of `size` bytes (packedSize), left out when empty as proto3 does. */
function writePacked(
  out: Uint8Array,
  pos: number,
  fieldNumber: number,
  column: Uint32Array,
  size: number,
): number {
  if (size === 0) return pos;
  out[pos++] = (fieldNumber << 3) | WIRE_LENGTH_DELIMITED;
  pos = writeVarint32(out, pos, size);
  for (let j = 0; j < column.length; j++) pos = writeVarint32(out, pos, column[j] as number);
  return pos;
}

function lengthDelimitedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

function writeBytes(out: Uint8Array, pos: number, fieldNumber: number, value: Uint8Array): number {
  out[pos++] = (fieldNumber << 3) | WIRE_LENGTH_DELIMITED;
  pos = writeVarint32(out, pos, value.length);
  out.set(value, pos);
  return pos + value.length;
}

/** int64 varint: two's complement, so negatives take 10 bytes. */
function int64Size(value: bigint): number {
  let unsigned = BigInt.asUintN(64, value);
  let size = 1;
  while (unsigned > 0x7fn) {
    unsigned >>= 7n;
    size++;
  }
  return size;
}

function writeInt64(out: Uint8Array, pos: number, value: bigint): number {
  let unsigned = BigInt.asUintN(64, value);
  while (unsigned > 0x7fn) {
    out[pos++] = Number(unsigned & 0x7fn) | 0x80;
    unsigned >>= 7n;
  }
  out[pos++] = Number(unsigned);
  return pos;
}

/** Hex digit values by char code; -1 for anything else. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;
  HEX_VALUE["0123456789ABCDEF".charCodeAt(i)] = i;
}
/** The two lowercase hex digit char codes of each byte value, at [2 * byte] and [2 * byte + 1]. */
const HEX_CODES = new Uint16Array(512);
for (let byte = 0; byte < 256; byte++) {
  const pair = byte.toString(16).padStart(2, "0");
  HEX_CODES[2 * byte] = pair.charCodeAt(0);
  HEX_CODES[2 * byte + 1] = pair.charCodeAt(1);
}
const DASH = 45;

/**
 * Writes the 16 bytes of a canonical UUID text (8-4-4-4-12 hex, either case) at `offset`.
 * Returns false if `text` is not one.
 */
export function parseUuid(text: string, out: Uint8Array, offset: number): boolean {
  if (text.length !== 36) return false;
  let pos = offset;
  let i = 0;
  while (i < 36) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (text.charCodeAt(i) !== DASH) return false;
      i++;
      continue;
    }
    const high = HEX_VALUE[text.charCodeAt(i)] ?? -1;
    const low = HEX_VALUE[text.charCodeAt(i + 1)] ?? -1;
    if ((high | low) < 0) return false;
    out[pos++] = (high << 4) | low;
    i += 2;
  }
  return true;
}

/**
 * Lowercase canonical UUID text of the 16 bytes at `offset`. Built by one String.fromCharCode call, so the
 * result is a flat string (concatenation made a rope of ~20 pieces: 3x slower, and flattened again later).
 */
export function formatUuid(bytes: Uint8Array, offset: number): string {
  const digit = (i: number) => HEX_CODES[2 * (bytes[offset + (i >> 1)] as number) + (i & 1)] as number;
  // biome-ignore format: one row per UUID group
  return String.fromCharCode(
    digit(0), digit(1), digit(2), digit(3), digit(4), digit(5), digit(6), digit(7), DASH,
    digit(8), digit(9), digit(10), digit(11), DASH,
    digit(12), digit(13), digit(14), digit(15), DASH,
    digit(16), digit(17), digit(18), digit(19), DASH,
    digit(20), digit(21), digit(22), digit(23), digit(24), digit(25), digit(26), digit(27), digit(28), digit(29), digit(30), digit(31),
  );
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A silence as its generated message (what field 13 holds). */
export function silenceMessage(silence: OpenSilence): SnapshotSilence {
  return create(SnapshotSilenceSchema, {
    id: silence.id,
    clientId: silence.clientId,
    startsAtUnixMs: BigInt(silence.startsAtMs),
    endsAtUnixMs: BigInt(silence.endsAtMs),
    matchers: silence.matchers.map((matcher) => create(SilenceMatcherSchema, matcher)),
  });
}

function parseSilence(bytes: Uint8Array): OpenSilence {
  let message: SnapshotSilence;
  try {
    message = fromBinary(SnapshotSilenceSchema, bytes);
  } catch (error) {
    throw new SnapshotError(`silences: ${(error as Error).message}`);
  }
  return {
    id: message.id,
    clientId: message.clientId,
    startsAtMs: Number(message.startsAtUnixMs),
    endsAtMs: Number(message.endsAtUnixMs),
    matchers: message.matchers.map(({ name, value, isRegex, isEqual }) => ({
      name,
      value,
      isRegex,
      isEqual,
    })),
  };
}

/**
 * Whether two valid snapshots hold the same silences, whatever their order, counting only those not ended
 * at `openAtMs`: a stored snapshot still lists a silence that has ended since, which a new build leaves out.
 */
export function sameSilences(a: Snapshot, b: Snapshot, openAtMs = Number.NEGATIVE_INFINITY): boolean {
  const key = (snapshot: Snapshot) =>
    JSON.stringify(
      snapshot.silences
        .filter((silence) => silence.endsAtMs >= openAtMs)
        .toSorted((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)),
    );
  return key(a) === key(b);
}

/** A rule's settings as their generated message (what field 14 holds). */
export function policyMessage({ ruleId, policy }: RulePolicyEntry): SnapshotRulePolicy {
  const optional = (value: number | null) => (value === null ? undefined : BigInt(value));
  return create(SnapshotRulePolicySchema, {
    ruleId,
    delivery: create(DeliveryPolicySchema, {
      skipResolved: !policy.sendResolved,
      repeatIntervalMs: optional(policy.repeatIntervalMs),
      groupBy: [...policy.groupBy],
      groupWaitMs: optional(policy.groupWaitMs),
      groupIntervalMs: optional(policy.groupIntervalMs),
      groupAlertsMax: policy.groupAlertsMax ?? undefined,
    }),
    muteWindows: [...policy.muteWindows],
  });
}

function parsePolicy(bytes: Uint8Array): RulePolicyEntry {
  let message: SnapshotRulePolicy;
  try {
    message = fromBinary(SnapshotRulePolicySchema, bytes);
  } catch (error) {
    throw new SnapshotError(`policies: ${(error as Error).message}`);
  }
  const delivery = message.delivery ?? create(DeliveryPolicySchema);
  const optional = (value: bigint | undefined) => (value === undefined ? null : Number(value));
  return {
    ruleId: message.ruleId,
    policy: {
      sendResolved: !delivery.skipResolved,
      repeatIntervalMs: optional(delivery.repeatIntervalMs),
      groupBy: delivery.groupBy,
      groupWaitMs: optional(delivery.groupWaitMs),
      groupIntervalMs: optional(delivery.groupIntervalMs),
      groupAlertsMax: delivery.groupAlertsMax ?? null,
      muteWindows: message.muteWindows,
    },
  };
}

/** Whether two valid snapshots hold the same rule settings, whatever their order. */
export function samePolicies(a: Snapshot, b: Snapshot): boolean {
  const key = (snapshot: Snapshot) =>
    JSON.stringify(
      snapshot.policies.toSorted((x, y) => (x.ruleId < y.ruleId ? -1 : x.ruleId > y.ruleId ? 1 : 0)),
    );
  return key(a) === key(b);
}
