/**
 * The rules snapshot kept in Redis (`RulesSnapshot` in proto/alerting/v1/rule.proto): columnar, strings
 * interned with index 0 = "*", ids as raw 16-byte UUIDs. Rule i is element i of every rule column.
 *
 * The encoder and decoder are hand-written for this one message: @bufbuild/protobuf's toBinary/fromBinary
 * measured ~150-340 ms / ~100-175 ms on 1M rules, most of the 1 s budget, against ~20 ms here.
 * snapshot.test.ts proves the bytes equal toBinary's and decode equals fromBinary's.
 */
import type { Rule } from "./matching/types.ts";
import { SEVERITY_MAX, SEVERITY_WILDCARD } from "./severity.ts";
import {
  ProtoReader,
  varintSize,
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
  WireError,
  writeVarint32,
} from "./wire.ts";

export const SNAPSHOT_SCHEMA_VERSION = 1;
const UUID_BYTES = 16;

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
}

/** A corrupt, partial or incompatible snapshot. */
export class SnapshotError extends Error {
  constructor(readonly reason: string) {
    super(`invalid rules snapshot: ${reason}`);
    this.name = "SnapshotError";
  }
}

/** Columnar form of `rules`. Rules must be valid (UUID ids, severity 0..4): anything else is a bug. */
export function buildSnapshot(rules: readonly Rule[], version: bigint, builtAtUnixMs: bigint): Snapshot {
  const count = rules.length;
  const strings = ["*"];
  const stringIndex = new Map([["*", 0]]);
  const intern = (value: string) => {
    let index = stringIndex.get(value);
    if (index === undefined) {
      index = strings.push(value) - 1;
      stringIndex.set(value, index);
    }
    return index;
  };
  // Clients are interned by their 16 bytes in an open-addressing table on typed arrays, not a Map keyed by
  // the id text: that Map alone took ~1.8 s of a ~4 s build of 1M rules (each lookup touches two scattered
  // 36-char strings), while the id must be parsed anyway.
  const clientBytes = new Uint8Array(count * UUID_BYTES);
  let clientCount = 0;
  const slots = new Int32Array(tableSize(count)); // client index + 1; 0 = empty
  const mask = slots.length - 1;
  const ruleIds = new Uint8Array(count * UUID_BYTES);
  const ruleClient = new Uint32Array(count);
  const ruleSeverity = new Uint32Array(count);
  const ruleSource = new Uint32Array(count);
  const ruleName = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const rule = rules[i] as Rule;
    if (!parseUuid(rule.ruleId, ruleIds, i * UUID_BYTES))
      throw new RangeError(`rule ${i}: rule_id is not a UUID`);
    const at = clientCount * UUID_BYTES; // parsed into the next free place, kept only if new
    if (!parseUuid(rule.clientId, clientBytes, at))
      throw new RangeError(`rule ${i}: client_id is not a UUID`);
    let hash = 0x811c9dc5;
    for (let b = 0; b < UUID_BYTES; b++) hash = Math.imul(hash ^ (clientBytes[at + b] as number), 0x01000193);
    let slot = hash & mask;
    let client = -1;
    for (;;) {
      const entry = slots[slot] as number;
      if (entry === 0) {
        client = clientCount++;
        slots[slot] = client + 1;
        break;
      }
      if (sameUuid(clientBytes, (entry - 1) * UUID_BYTES, at)) {
        client = entry - 1;
        break;
      }
      slot = (slot + 1) & mask;
    }
    ruleClient[i] = client;
    if (!(rule.severity >= SEVERITY_WILDCARD && rule.severity <= SEVERITY_MAX)) {
      throw new RangeError(`rule ${i}: severity ${rule.severity} is not 0..4`);
    }
    ruleSeverity[i] = rule.severity;
    ruleSource[i] = intern(rule.source);
    ruleName[i] = intern(rule.name);
  }
  const clientIds = clientBytes.slice(0, clientCount * UUID_BYTES);
  return {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    version,
    builtAtUnixMs,
    strings,
    clientIds,
    ruleIds,
    ruleClient,
    ruleSeverity,
    ruleSource,
    ruleName,
  };
}

/** A power of two at least twice `count`, so probe chains stay short. */
function tableSize(count: number): number {
  let size = 16;
  while (size < count * 2) size *= 2;
  return size;
}

function sameUuid(bytes: Uint8Array, a: number, b: number): boolean {
  for (let i = 0; i < UUID_BYTES; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
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

/**
 * Throws SnapshotError unless the columns line up, every index is in range, and every client and string
 * is used by some rule.
 */
export function validateSnapshot(snapshot: Snapshot): void {
  const fail = (reason: string) => {
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
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Protobuf bytes, identical to toBinary(RulesSnapshotSchema, ...) of the same snapshot. */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const strings = snapshot.strings.map((value) => encoder.encode(value));
  const columns = [snapshot.ruleClient, snapshot.ruleSeverity, snapshot.ruleSource, snapshot.ruleName];
  const columnSizes = columns.map(packedSize);
  // proto3 leaves out fields holding their default (0, empty), as toBinary does.
  let size = 0;
  if (snapshot.schemaVersion !== 0) size += 1 + varintSize(snapshot.schemaVersion);
  if (snapshot.version !== 0n) size += 1 + int64Size(snapshot.version);
  if (snapshot.builtAtUnixMs !== 0n) size += 1 + int64Size(snapshot.builtAtUnixMs);
  for (const value of strings) size += lengthDelimitedSize(value.length);
  if (snapshot.clientIds.length > 0) size += lengthDelimitedSize(snapshot.clientIds.length);
  if (snapshot.ruleIds.length > 0) size += lengthDelimitedSize(snapshot.ruleIds.length);
  for (const columnSize of columnSizes) if (columnSize > 0) size += lengthDelimitedSize(columnSize);

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
    const columnSize = columnSizes[i] as number;
    if (columnSize === 0) return;
    out[pos++] = ((7 + i) << 3) | WIRE_LENGTH_DELIMITED;
    pos = writeVarint32(out, pos, columnSize);
    for (let j = 0; j < column.length; j++) pos = writeVarint32(out, pos, column[j] as number);
  });
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

const COLUMN_NAMES = ["rule_client", "rule_severity", "rule_source", "rule_name"];

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
  };
  // [start, end) of each occurrence of the packed columns (repeated occurrences concatenate).
  const columnRanges: number[][] = [[], [], [], []];
  while (!reader.done()) {
    const tag = reader.tag("RulesSnapshot");
    const fieldNumber = tag >>> 3;
    const wireType = tag & 7;
    const expected = fieldNumber <= 3 ? WIRE_VARINT : fieldNumber <= 10 ? WIRE_LENGTH_DELIMITED : wireType;
    if (wireType !== expected) {
      const field = fieldNumber >= 7 ? COLUMN_NAMES[fieldNumber - 7] : `field ${fieldNumber}`;
      throw new SnapshotError(`${field}: wire type ${wireType}, expected ${expected}`);
    }
    if (fieldNumber === 1) snapshot.schemaVersion = reader.varint32("schema_version");
    else if (fieldNumber === 2 || fieldNumber === 3) {
      reader.varint64(fieldNumber === 2 ? "version" : "built_at_unix_ms");
      if (fieldNumber === 2) snapshot.version = reader.int64();
      else snapshot.builtAtUnixMs = reader.int64();
    } else if (fieldNumber <= 10) {
      const end = reader.lengthDelimited(`field ${fieldNumber}`);
      if (fieldNumber === 4) snapshot.strings.push(decoder.decode(bytes.subarray(reader.pos, end)));
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
