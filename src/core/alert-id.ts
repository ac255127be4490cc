/**
 * The alert id derived when a producer sends none, so that redeliveries of the same alert dedupe to the
 * same notification (notifications are unique per client, scope, alert_id and route).
 *
 * alert_id = lowercase hex of the first 16 bytes (128 bits) of SHA-256 over, in order:
 *
 *   severity            int32, big-endian, 4 bytes (the wire enum number, e.g. HIGH = 00 00 00 03)
 *   len(source)         uint32, big-endian, 4 bytes: the byte length of the UTF-8 encoding
 *   source              UTF-8 bytes
 *   len(name)           uint32, big-endian, 4 bytes
 *   name                UTF-8 bytes
 *   event_time_unix_ms  int64, big-endian two's complement, 8 bytes
 *
 * The length prefixes keep ("ab", "c") and ("a", "bc") apart. The result is 32 hex characters.
 */

const encoder = new TextEncoder();

export function deriveAlertId(
  severity: number,
  source: string,
  name: string,
  eventTimeUnixMs: bigint,
): string {
  if (!Number.isInteger(severity) || severity < -0x80000000 || severity > 0x7fffffff) {
    throw new RangeError(`severity is not an int32: ${severity}`);
  }
  const sourceBytes = encoder.encode(source);
  const nameBytes = encoder.encode(name);
  const buffer = new Uint8Array(4 + 4 + sourceBytes.length + 4 + nameBytes.length + 8);
  const view = new DataView(buffer.buffer);
  let offset = 0;
  view.setInt32(offset, severity);
  offset += 4;
  view.setUint32(offset, sourceBytes.length);
  buffer.set(sourceBytes, offset + 4);
  offset += 4 + sourceBytes.length;
  view.setUint32(offset, nameBytes.length);
  buffer.set(nameBytes, offset + 4);
  offset += 4 + nameBytes.length;
  // setBigInt64 throws on values outside int64, which the wire cannot produce.
  view.setBigInt64(offset, eventTimeUnixMs);
  return Bun.CryptoHasher.hash("sha256", buffer, "hex").slice(0, 32);
}
