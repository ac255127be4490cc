import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { deriveAlertId } from "./alert-id.ts";

describe("deriveAlertId", () => {
  test("fixed vectors stay stable (other languages reproduce these)", () => {
    expect(deriveAlertId(3, "db-1", "disk_full", 1700000000000n)).toBe("a5193f275ab80c7d137ff6e2ecd61915");
    expect(deriveAlertId(1, "", "", 0n)).toBe("e5d5ec4f20c24cda9cfde44078f782ea");
    expect(deriveAlertId(4, "ab", "c", -1n)).toBe("2de85b84f607c9e28c49fb0d65261546");
    expect(deriveAlertId(4, "a", "bc", -1n)).toBe("88f56c55b3ddcf768cfe0de71fc71792");
    expect(deriveAlertId(2, "Zürich ☃", "ошибка 🔥", 9223372036854775807n)).toBe(
      "dd7d6a7c8aad38b177bb60acdd97b146",
    );
  });

  test("the documented byte layout, rebuilt by hand, gives the same id", () => {
    const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
    const layout = `00000003 00000004 ${hex("db-1")} 00000009 ${hex("disk_full")} 0000018bcfe56800`;
    const digest = createHash("sha256")
      .update(Buffer.from(layout.replaceAll(" ", ""), "hex"))
      .digest("hex");
    expect(deriveAlertId(3, "db-1", "disk_full", 1700000000000n)).toBe(digest.slice(0, 32));
  });

  test("every input field changes the id", () => {
    const base = deriveAlertId(3, "src", "name", 1n);
    expect(deriveAlertId(2, "src", "name", 1n)).not.toBe(base);
    expect(deriveAlertId(3, "srC", "name", 1n)).not.toBe(base);
    expect(deriveAlertId(3, "src", "namE", 1n)).not.toBe(base);
    expect(deriveAlertId(3, "src", "name", 2n)).not.toBe(base);
    expect(deriveAlertId(3, "sr", "cname", 1n)).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{32}$/);
  });

  test("a severity that is not an int32 is a programmer error", () => {
    expect(() => deriveAlertId(1.5, "s", "n", 0n)).toThrow(RangeError);
  });
});
