/**
 * Hand-written protobuf for the evaluator's hot path. @bufbuild/protobuf is reflection-based (~105-141k
 * encode+decode/s); here an AlertNew is scanned once for the fields matching needs, and an AlertMatched is
 * the original AlertNew bytes with fields appended, because protobuf parsers merge concatenated messages
 * (a later singular field wins, repeated fields accumulate).
 */
import type { ClientMatch } from "./matching/types.ts";
import { textProblem } from "./text.ts";

/**
 * Malformed protobuf bytes, or a string no boundary accepts (see text.ts): `field` names what was
 * being read, `reason` what was wrong.
 */
export class WireError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "WireError";
  }
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

/** A cursor over protobuf bytes. Every read checks bounds and throws WireError naming the field. */
export class ProtoReader {
  pos = 0;
  /** The low and high 32 bits (unsigned) of the last varint64() read; kept here to avoid allocating. */
  lo = 0;
  hi = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly end: number = bytes.length,
  ) {}

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A field tag: returns (field number << 3 | wire type), validated. */
  tag(message: string): number {
    const tag = this.varint32(message);
    if (tag >>> 3 === 0) throw new WireError(message, `field number 0 at byte ${this.pos}`);
    const wireType = tag & 7;
    if (wireType > WIRE_FIXED32)
      throw new WireError(message, `invalid wire type ${wireType} at byte ${this.pos}`);
    return tag;
  }

  /** A varint as uint32: its low 32 bits, as protobuf does for 32-bit fields. */
  varint32(field: string): number {
    const pos = this.pos;
    if (pos < this.end) {
      const first = this.bytes[pos] as number;
      if (first < 0x80) {
        this.pos = pos + 1;
        return first;
      }
    }
    this.varint64(field);
    return this.lo;
  }

  /** Reads a varint of up to 10 bytes into lo/hi. */
  varint64(field: string): void {
    const bytes = this.bytes;
    const end = this.end;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let byte = 0;
    // Bytes 0-3 carry bits 0-27 of lo.
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) throw new WireError(field, "truncated varint");
      byte = bytes[pos++] as number;
      lo |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.setVarint(pos, lo, 0);
        return;
      }
    }
    // Byte 4 carries bits 28-31 of lo and bits 0-2 of hi.
    if (pos >= end) throw new WireError(field, "truncated varint");
    byte = bytes[pos++] as number;
    lo |= (byte & 0x0f) << 28;
    hi = (byte & 0x7f) >> 4;
    if (byte < 0x80) {
      this.setVarint(pos, lo, hi);
      return;
    }
    // Bytes 5-9 carry bits 3-31 of hi.
    for (let shift = 3; shift < 32; shift += 7) {
      if (pos >= end) throw new WireError(field, "truncated varint");
      byte = bytes[pos++] as number;
      hi |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.setVarint(pos, lo, hi);
        return;
      }
    }
    throw new WireError(field, "varint longer than 10 bytes");
  }

  private setVarint(pos: number, lo: number, hi: number): void {
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** The last varint64() as a signed int64 (proto int64). */
  int64(): bigint {
    // Timestamps fit in 53 bits: one Number -> BigInt conversion instead of BigInt arithmetic.
    if (this.hi < 0x200000) return BigInt(this.hi * 4294967296 + this.lo);
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  /** Reads a length prefix and returns the end offset of the payload, which starts at `pos`. */
  lengthDelimited(field: string): number {
    const length = this.varint32(field);
    if (length > this.end - this.pos) {
      throw new WireError(field, `length ${length} runs past the end (${this.end - this.pos} bytes left)`);
    }
    return this.pos + length;
  }

  /** Skips the value of a field of the given wire type (an unknown field). */
  skip(tag: number, field: string, depth = 0): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint64(field);
        return;
      case WIRE_FIXED64:
        this.advance(8, field);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.pos = this.lengthDelimited(field);
        return;
      case WIRE_FIXED32:
        this.advance(4, field);
        return;
      case WIRE_START_GROUP: {
        if (depth >= 100) throw new WireError(field, "groups nested too deeply");
        for (;;) {
          if (this.done()) throw new WireError(field, "group without an end");
          const inner = this.tag(field);
          if ((inner & 7) === WIRE_END_GROUP) {
            if (inner >>> 3 !== tag >>> 3)
              throw new WireError(field, "group ends with the wrong field number");
            return;
          }
          this.skip(inner, field, depth + 1);
        }
      }
      default:
        throw new WireError(field, "end-group tag without a start");
    }
  }

  private advance(count: number, field: string): void {
    if (count > this.end - this.pos) throw new WireError(field, "truncated fixed-width value");
    this.pos += count;
  }
}

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictDecoder = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
const encoder = new TextEncoder();

/** What the evaluator needs from an AlertNew; the context map is skipped and forwarded as bytes. */
export interface AlertHeader {
  alertId: string;
  severity: number;
  source: string;
  name: string;
  eventTimeUnixMs: bigint;
  schemaVersion: number;
  /** The stream the alert came in under (see src/core/matching/scope.ts); "" from internal producers. */
  scope: string;
}

/**
 * Scans AlertNew bytes once. Strings are decoded only for the fields returned, and only for the last
 * occurrence (a later field wins). Throws WireError on malformed input; AlertNew bytes carrying fields 8
 * or 9 are rejected, since forwarding them would smuggle a client_id or rule_ids into AlertMatched.
 * Every string, in every occurrence, is checked for what Postgres cannot store: NUL, and invalid UTF-8
 * (which is what an unpaired surrogate becomes on the wire). The bytes are forwarded as they are, so a
 * later occurrence does not excuse an earlier one: an occurrence is checked when the next one replaces
 * it, the last when it is decoded, context entries as they are skipped (without decoding when ASCII).
 */
export function readAlertNew(bytes: Uint8Array): AlertHeader {
  const reader = new ProtoReader(bytes);
  let severity = 0;
  let eventTimeUnixMs = 0n;
  let schemaVersion = 0;
  // [start, end) of the last occurrence of each string field; decoded after the scan.
  let alertIdStart = 0;
  let alertIdEnd = 0;
  let sourceStart = 0;
  let sourceEnd = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let scopeStart = 0;
  let scopeEnd = 0;
  while (!reader.done()) {
    const tag = reader.tag("AlertNew");
    switch (tag >>> 3) {
      case 1:
        expectWireType(tag, WIRE_LENGTH_DELIMITED, "alert_id");
        if (alertIdEnd > alertIdStart) checkText(bytes, alertIdStart, alertIdEnd, "alert_id");
        alertIdEnd = reader.lengthDelimited("alert_id");
        alertIdStart = reader.pos;
        reader.pos = alertIdEnd;
        break;
      case 2:
        expectWireType(tag, WIRE_VARINT, "severity");
        severity = reader.varint32("severity") | 0; // an enum is an int32
        break;
      case 3:
        expectWireType(tag, WIRE_LENGTH_DELIMITED, "source");
        if (sourceEnd > sourceStart) checkText(bytes, sourceStart, sourceEnd, "source");
        sourceEnd = reader.lengthDelimited("source");
        sourceStart = reader.pos;
        reader.pos = sourceEnd;
        break;
      case 4:
        expectWireType(tag, WIRE_LENGTH_DELIMITED, "name");
        if (nameEnd > nameStart) checkText(bytes, nameStart, nameEnd, "name");
        nameEnd = reader.lengthDelimited("name");
        nameStart = reader.pos;
        reader.pos = nameEnd;
        break;
      case 5:
        expectWireType(tag, WIRE_LENGTH_DELIMITED, "context");
        checkContextEntry(reader, reader.lengthDelimited("context"));
        break;
      case 6:
        expectWireType(tag, WIRE_VARINT, "event_time_unix_ms");
        reader.varint64("event_time_unix_ms");
        eventTimeUnixMs = reader.int64();
        break;
      case 7:
        expectWireType(tag, WIRE_VARINT, "schema_version");
        schemaVersion = reader.varint32("schema_version");
        break;
      case 8:
      case 9:
      case 13:
      case 14:
      case 15:
        throw new WireError("AlertNew", `field ${tag >>> 3} is reserved for AlertMatched`);
      case 10:
        expectWireType(tag, WIRE_LENGTH_DELIMITED, "scope");
        scopeEnd = reader.lengthDelimited("scope");
        scopeStart = reader.pos;
        reader.pos = scopeEnd;
        break;
      default:
        reader.skip(tag, "AlertNew");
    }
  }
  return {
    alertId: decodeText(bytes, alertIdStart, alertIdEnd, "alert_id"),
    severity,
    source: decodeText(bytes, sourceStart, sourceEnd, "source"),
    name: decodeText(bytes, nameStart, nameEnd, "name"),
    eventTimeUnixMs,
    schemaVersion,
    scope: decodeString(bytes, scopeStart, scopeEnd),
  };
}

function expectWireType(tag: number, wireType: number, field: string): void {
  if ((tag & 7) !== wireType) throw new WireError(field, `wire type ${tag & 7}, expected ${wireType}`);
}

function decodeString(bytes: Uint8Array, start: number, end: number): string {
  return start === end ? "" : decoder.decode(bytes.subarray(start, end));
}

/** The text in bytes[start, end), decoded strictly; throws WireError for `field` if it cannot be stored. */
function decodeText(bytes: Uint8Array, start: number, end: number, field: string): string {
  if (start === end) return "";
  let text: string;
  try {
    text = strictDecoder.decode(bytes.subarray(start, end));
  } catch {
    throw new WireError(field, invalidUtf8);
  }
  if (text.includes("\u0000")) throw new WireError(field, textProblem(text) as string);
  return text;
}

/** Throws WireError for `field` if the UTF-8 text in bytes[start, end) cannot be stored. */
function checkText(bytes: Uint8Array, start: number, end: number, field: string): void {
  const problem = utf8TextProblem(bytes, start, end);
  if (problem !== undefined) throw new WireError(field, problem);
}

/**
 * Why the UTF-8 text in bytes[start, end) cannot be stored, or undefined. ASCII without NUL, nearly
 * every alert's text, takes one pass over the bytes; anything else is decoded strictly and worded by
 * textProblem, as every boundary words it.
 */
function utf8TextProblem(bytes: Uint8Array, start: number, end: number): string | undefined {
  if (isPlainAscii(bytes, start, end)) return undefined;
  let text: string;
  try {
    text = strictDecoder.decode(bytes.subarray(start, end));
  } catch {
    return invalidUtf8;
  }
  return textProblem(text);
}

/** Whether every byte of bytes[start, end) is in 1..127: ASCII without NUL. */
function isPlainAscii(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const byte = bytes[i] as number;
    if (byte === 0 || byte > 0x7f) return false;
  }
  return true;
}

const invalidUtf8 = "is not valid UTF-8 (an unpaired surrogate or a malformed byte sequence)";

/** Fields of a context map entry. */
const CONTEXT_KEY = 1;
const CONTEXT_VALUE = 2;

/**
 * Checks the text of one context map entry, which ends at `entryEnd`, and leaves the reader there.
 * A refused value is named by its key, e.g. `context.db_password`.
 */
function checkContextEntry(reader: ProtoReader, entryEnd: number): void {
  const bytes = reader.bytes;
  if (isPlainAscii(bytes, reader.pos, entryEnd)) {
    // Tags, lengths under 128 and ASCII text without NUL: no string in the entry can be refused.
    reader.pos = entryEnd;
    return;
  }
  let keyStart = 0;
  let keyEnd = 0;
  let valueProblem: string | undefined;
  while (reader.pos < entryEnd) {
    const tag = reader.tag("context");
    const fieldNumber = tag >>> 3;
    if (fieldNumber === CONTEXT_KEY || fieldNumber === CONTEXT_VALUE) {
      expectWireType(tag, WIRE_LENGTH_DELIMITED, "context");
      const end = reader.lengthDelimited("context");
      if (end > entryEnd) throw new WireError("context", "entry field runs past the entry's end");
      const problem = utf8TextProblem(bytes, reader.pos, end);
      if (fieldNumber === CONTEXT_KEY) {
        if (problem !== undefined) throw new WireError("context", `a key ${problem}`);
        keyStart = reader.pos;
        keyEnd = end;
      } else {
        valueProblem ??= problem;
      }
      reader.pos = end;
    } else {
      reader.skip(tag, "context");
    }
    if (reader.pos > entryEnd) throw new WireError("context", "entry field runs past the entry's end");
  }
  if (valueProblem !== undefined)
    throw new WireError(`context.${decodeString(bytes, keyStart, keyEnd)}`, valueProblem);
}

/**
 * AlertMatched bytes for one client: the AlertNew bytes as received, then (when the producer gave no
 * alert_id) field 1 with the derived id, then fields 8 and 9 for the client.
 */
export function encodeAlertMatched(
  alertNew: Uint8Array,
  derivedAlertId: string | undefined,
  group: ClientMatch,
): Uint8Array {
  const suffix = clientSuffix(group);
  if (derivedAlertId === undefined) {
    const out = new Uint8Array(alertNew.length + suffix.length);
    out.set(alertNew);
    out.set(suffix, alertNew.length);
    return out;
  }
  const id = encoder.encode(derivedAlertId);
  const out = new Uint8Array(alertNew.length + 1 + varintSize(id.length) + id.length + suffix.length);
  out.set(alertNew);
  out.set(suffix, writeStringField(out, alertNew.length, 1, id));
  return out;
}

/** AlertMatched fields the evaluator may append after a client's suffix. */
export const MATCHED_SILENCED_BY = 13;
export const MATCHED_POLICY = 14;
export const MATCHED_MUTED_BY_RULE = 15;

/**
 * `alertMatched` with one more length-delimited field: silenced_by or muted_by_rule (the aggregator
 * then records the notification as SILENCED instead of sending it), or policy (encoded DeliveryPolicy).
 */
export function appendField(
  alertMatched: Uint8Array,
  fieldNumber: typeof MATCHED_SILENCED_BY | typeof MATCHED_POLICY | typeof MATCHED_MUTED_BY_RULE,
  value: string | Uint8Array,
): Uint8Array {
  const bytes = typeof value === "string" ? encoder.encode(value) : value;
  const out = new Uint8Array(alertMatched.length + 1 + varintSize(bytes.length) + bytes.length);
  out.set(alertMatched);
  writeStringField(out, alertMatched.length, fieldNumber, bytes);
  return out;
}

/** The matcher's precomputed groups are shared across alerts, so their suffix is encoded once. */
const suffixCache = new WeakMap<ClientMatch, Uint8Array>();

/** Fields 8 (client_id) and 9 (rule_ids) of AlertMatched for one client group. */
export function clientSuffix(group: ClientMatch): Uint8Array {
  const cached = suffixCache.get(group);
  if (cached !== undefined) return cached;
  const clientId = encoder.encode(group.clientId);
  const ruleIds = group.ruleIds.map((id) => encoder.encode(id));
  let size = 1 + varintSize(clientId.length) + clientId.length;
  for (const id of ruleIds) size += 1 + varintSize(id.length) + id.length;
  const suffix = new Uint8Array(size);
  let pos = writeStringField(suffix, 0, 8, clientId);
  for (const id of ruleIds) pos = writeStringField(suffix, pos, 9, id);
  suffixCache.set(group, suffix);
  return suffix;
}

/** Writes a length-delimited field with a one-byte tag (field numbers 1-15); returns the new offset. */
function writeStringField(out: Uint8Array, pos: number, fieldNumber: number, value: Uint8Array): number {
  out[pos++] = (fieldNumber << 3) | WIRE_LENGTH_DELIMITED;
  pos = writeVarint32(out, pos, value.length);
  out.set(value, pos);
  return pos + value.length;
}

export function writeVarint32(out: Uint8Array, pos: number, value: number): number {
  while (value > 0x7f) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return pos;
}

/** Bytes of a uint32 varint. */
export function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}
