import { expect, test } from "bun:test";
import { AssertionError, assert } from "./assert.ts";

test("assert passes a true condition and throws an AssertionError naming the broken rule otherwise", () => {
  expect(() => assert(1 + 1 === 2, "arithmetic")).not.toThrow();
  const thrown = (() => {
    try {
      assert(false, "a channel got another type's endpoint");
    } catch (error) {
      return error;
    }
  })();
  expect(thrown).toBeInstanceOf(AssertionError);
  expect((thrown as Error).message).toBe("a channel got another type's endpoint");
  expect((thrown as Error).name).toBe("AssertionError");
});
