/**
 * A rule's mute windows (Alertmanager's mute_time_intervals, in one line each):
 *
 *   <weekdays> <HH:MM>-<HH:MM> [<IANA time zone>]     e.g. `monday:friday 22:00-06:00 Europe/Berlin`
 *
 * Weekdays are Alertmanager's syntax: names or `first:last` ranges, comma-separated, or `*` for every
 * day. The window opens at the start time on each listed day; an end at or before the start means the
 * next day's (so `friday 22:00-06:00` ends on Saturday morning). Times are wall-clock in the zone,
 * UTC when none is given.
 *
 * The evaluator tests them at the time it processes a submission, not at the alert's event time
 * (startsAt), as Alertmanager does: startsAt stays the same across an alert's re-sends, so an alert
 * that started inside a window would stay muted long after it closed. A redelivered submission may
 * therefore be judged differently; the aggregator's lifecycle (src/core/lifecycle.ts) keeps that
 * harmless: a muted submission silences only its own row, and the first unmuted one of an episode
 * that opened muted notifies it once.
 */

const weekdayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] as const;
const minutesPerDay = 24 * 60;
const timePattern = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/;
/** A window's text is short; the bound keeps a hostile one from costing anything to parse. */
export const MUTE_WINDOW_LENGTH_MAX = 128;

export interface MuteWindow {
  readonly text: string;
  /** Bit d set: the window opens on weekday d (0 = Sunday). */
  readonly weekdays: number;
  readonly startMinute: number;
  /** Exclusive; at or before startMinute: on the next day. */
  readonly endMinute: number;
  readonly timeZone: string;
}

export type MuteWindowParse = { window: MuteWindow } | { problem: string };

/** Parses one window's text; a problem names what is wrong, for an API error. */
export function parseMuteWindow(text: string): MuteWindowParse {
  if (text.length > MUTE_WINDOW_LENGTH_MAX)
    return { problem: `must be at most ${MUTE_WINDOW_LENGTH_MAX} characters` };
  const parts = text.trim().split(/\s+/);
  if (parts.length < 2 || parts.length > 3)
    return { problem: "must be '<weekdays> <HH:MM>-<HH:MM> [<time zone>]'" };
  const [days, times, zone = "UTC"] = parts as [string, string, string?];
  const weekdays = parseWeekdays(days);
  if (typeof weekdays === "string") return { problem: weekdays };
  const time = timePattern.exec(times);
  if (time === null)
    return { problem: `times ${JSON.stringify(times)} must be HH:MM-HH:MM (24:00 as an end)` };
  const startMinute = Number(time[1]) * 60 + Number(time[2]);
  const endMinute = Number(time[3]) * 60 + Number(time[4]);
  if (endMinute > minutesPerDay) return { problem: "the end time is after 24:00" };
  if (startMinute === endMinute) return { problem: "the window is empty (start equals end)" };
  const timeZone = canonicalTimeZone(zone);
  if (timeZone === undefined) return { problem: `unknown time zone ${JSON.stringify(zone)}` };
  return { window: { text, weekdays, startMinute, endMinute, timeZone } };
}

function parseWeekdays(text: string): number | string {
  if (text === "*") return 0x7f;
  let mask = 0;
  for (const item of text.toLowerCase().split(",")) {
    const [first, last = first, extra] = item.split(":");
    const from = weekdayNames.indexOf(first as (typeof weekdayNames)[number]);
    const to = weekdayNames.indexOf(last as (typeof weekdayNames)[number]);
    if (extra !== undefined || from < 0 || to < 0)
      return `weekdays ${JSON.stringify(item)} must be a day name (monday...) or a range first:last`;
    // Alertmanager's ranges run forward through the week, wrapping after Saturday.
    for (let day = from; ; day = (day + 1) % 7) {
      mask |= 1 << day;
      if (day === to) break;
    }
  }
  return mask;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      weekday: "long",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * The zone's canonical name (names are case-insensitive), or undefined for an unknown one. Only
 * canonical names reach the formatter cache, so a caller spelling one zone in many ways cannot grow it.
 */
function canonicalTimeZone(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** The weekday (0 = Sunday) and minute of the day at `timeMs` on the wall clocks of `timeZone`. */
function wallClock(timeMs: number, timeZone: string): { weekday: number; minute: number } {
  let weekday = 0;
  let minute = 0;
  for (const part of formatterOf(timeZone).formatToParts(timeMs)) {
    if (part.type === "weekday") weekday = weekdayNames.indexOf(part.value.toLowerCase() as "sunday");
    else if (part.type === "hour") minute += Number(part.value) * 60;
    else if (part.type === "minute") minute += Number(part.value);
  }
  return { weekday, minute };
}

/** Whether `timeMs` falls inside the window. */
export function isInMuteWindow(window: MuteWindow, timeMs: number): boolean {
  const { weekday, minute } = wallClock(timeMs, window.timeZone);
  const opensOn = (day: number) => (window.weekdays & (1 << day)) !== 0;
  if (window.startMinute < window.endMinute)
    return opensOn(weekday) && minute >= window.startMinute && minute < window.endMinute;
  // Past midnight: the evening part belongs to today's window, the morning part to yesterday's.
  return (
    (opensOn(weekday) && minute >= window.startMinute) ||
    (opensOn((weekday + 6) % 7) && minute < window.endMinute)
  );
}
