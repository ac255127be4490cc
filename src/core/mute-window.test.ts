import { describe, expect, test } from "bun:test";
import { isInMuteWindow, type MuteWindow, parseMuteWindow } from "./mute-window.ts";

function window(text: string): MuteWindow {
  const parsed = parseMuteWindow(text);
  if (!("window" in parsed)) throw new Error(`${text}: ${parsed.problem}`);
  return parsed.window;
}

const at = (iso: string) => Date.parse(iso);

describe("parseMuteWindow", () => {
  test.each([
    ["monday 09:00-17:00", "", 0b0000010, 540, 1020, "UTC"],
    ["monday:friday 22:00-06:00 Europe/Berlin", "", 0b0111110, 1320, 360, "Europe/Berlin"],
    ["saturday,sunday 00:00-24:00", "", 0b1000001, 0, 1440, "UTC"],
    ["friday:monday 12:00-13:00", "wraps after saturday", 0b1100011, 720, 780, "UTC"],
    ["*  08:30-09:00   America/New_York", "", 0b1111111, 510, 540, "America/New_York"],
    ["MONDAY 01:00-02:00", "names in any case", 0b0000010, 60, 120, "UTC"],
  ])("%s %s", (text, _why, weekdays, startMinute, endMinute, timeZone) => {
    expect(window(text)).toEqual({ text, weekdays, startMinute, endMinute, timeZone });
  });

  test.each([
    ["", "must be '<weekdays>"],
    ["monday", "must be '<weekdays>"],
    ["monday 09:00-17:00 UTC extra", "must be '<weekdays>"],
    ["mon 09:00-17:00", 'weekdays "mon" must be'],
    ["monday:tuesday:friday 09:00-17:00", "weekdays"],
    ["monday 9:00-17:00", "times"],
    ["monday 09:00-24:01", "after 24:00"],
    ["monday 24:00-01:00", "times"],
    ["monday 09:00-09:00", "empty"],
    ["monday 09:00-17:00 Mars/Olympus", 'unknown time zone "Mars/Olympus"'],
    [`monday 09:00-17:00 ${"x".repeat(200)}`, "at most 128"],
  ])("refuses %j", (text, problem) => {
    const parsed = parseMuteWindow(text);
    expect("problem" in parsed && parsed.problem).toContain(problem);
  });
});

describe("isInMuteWindow", () => {
  // 2026-12-07 is a Monday.
  test.each([
    ["monday 09:00-17:00", "2026-12-07T09:00:00Z", true, ""],
    ["monday 09:00-17:00", "2026-12-07T16:59:59Z", true, ""],
    ["monday 09:00-17:00", "2026-12-07T17:00:00Z", false, "the end is exclusive"],
    ["monday 09:00-17:00", "2026-12-07T08:59:59Z", false, ""],
    ["monday 09:00-17:00", "2026-12-08T10:00:00Z", false, "tuesday"],
    ["friday 22:00-06:00", "2026-12-11T23:00:00Z", true, "friday evening"],
    ["friday 22:00-06:00", "2026-12-12T05:59:00Z", true, "saturday morning belongs to friday's window"],
    ["friday 22:00-06:00", "2026-12-11T05:00:00Z", false, "friday morning belongs to thursday's"],
    ["friday 22:00-06:00", "2026-12-12T06:00:00Z", false, ""],
    ["monday 09:00-17:00 Europe/Berlin", "2026-12-07T08:30:00Z", true, "09:30 in Berlin (UTC+1)"],
    ["monday 09:00-17:00 Europe/Berlin", "2026-12-07T16:30:00Z", false, "17:30 in Berlin"],
    ["monday 09:00-17:00 Europe/Berlin", "2026-07-06T07:30:00Z", true, "09:30 in summer (UTC+2)"],
    ["sunday 23:00-01:00 Pacific/Auckland", "2026-12-06T10:30:00Z", true, "Sunday 23:30 in Auckland"],
    ["saturday,sunday 00:00-24:00", "2026-12-13T23:59:59Z", true, ""],
    ["saturday,sunday 00:00-24:00", "2026-12-14T00:00:00Z", false, ""],
  ])("%s at %s: %p %s", (text, iso, muted) => {
    expect(isInMuteWindow(window(text), at(iso))).toBe(muted);
  });
});

test("a zone is kept by its canonical name, however it is spelled", () => {
  expect(window("monday 09:00-17:00 europe/BERLIN").timeZone).toBe("Europe/Berlin");
  expect(window("monday 09:00-17:00 utc").timeZone).toBe("UTC");
});
