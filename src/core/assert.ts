/**
 * Programmer errors: states the code's own logic rules out. They throw an AssertionError so they fail
 * fast, where operating errors (a broker down, a bad record) are typed and classified as data.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
