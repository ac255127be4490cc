/**
 * Text every boundary refuses: Postgres stores neither U+0000 in text (SQLSTATE 22021) nor `\u0000`
 * in jsonb (22P05), and an unpaired UTF-16 surrogate has no UTF-8 form, so either would fail a durable
 * write long after the alert was accepted. Ingest, the API and the stages' decoders all ask here.
 */

/** Why `value` cannot be stored as text, or undefined when it can. */
export function textProblem(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit === 0) return `contains a NUL character at position ${i}`;
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    return `contains an unpaired surrogate at position ${i}`;
  }
  return undefined;
}
