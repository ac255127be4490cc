/** Slack's and email's group messages within their bounds, the rest counted. */
import { describe, expect, test } from "bun:test";
import { groupedAlert, groupMessage } from "../../harness/group-messages.ts";
import {
  emailBodyBytesMax,
  slackAlertsListedMax,
  slackSummaryLengthMax,
  utf8Bytes,
} from "../core/group-payload.ts";
import { renderGroupEmail } from "./email.ts";
import { slackGroupPayload } from "./slack.ts";

/** The count an "and N more" line gives, 0 without one. */
const moreIn = (text: string) => Number(/and (\d+) more/.exec(text)?.[1] ?? 0);

describe("Slack", () => {
  test("long alert texts: fewer lines, within the summary bound once escaped, the rest counted", () => {
    // Every `&` becomes `&amp;`: the bound holds for what Slack receives.
    const alerts = Array.from({ length: 10_000 }, (_, i) => groupedAlert(i, { name: "&".repeat(300) }));
    const payload = slackGroupPayload(groupMessage(alerts, 100));
    const text = payload.attachments[0]?.text ?? "";
    expect(text.length).toBeLessThanOrEqual(slackSummaryLengthMax);
    const lines = text.split("\n");
    expect(lines.length - 1).toBeLessThan(slackAlertsListedMax);
    expect(lines.length - 1 + moreIn(text)).toBe(10_000);
    expect(payload.text).toBe("[FIRING:10000] source=billing-api");
  });

  test("a rule's cap below Slack's own: the cap's alerts listed, the rest counted", () => {
    const alerts = Array.from({ length: 12 }, (_, i) => groupedAlert(i));
    const text = slackGroupPayload(groupMessage(alerts, 3)).attachments[0]?.text ?? "";
    expect(text.split("\n")).toHaveLength(4);
    expect(moreIn(text)).toBe(9);
  });

  test("one alert longer than the bound: no line, counted", () => {
    const payload = slackGroupPayload(groupMessage([groupedAlert(1, { name: "x".repeat(20_000) })], 100));
    expect(payload.attachments[0]?.text).toBe("and 1 more");
  });

  test("an alert firing and resolved in the window: one line, resolved, and the group resolved", () => {
    const payload = slackGroupPayload(
      groupMessage([groupedAlert(1), groupedAlert(2, { alertId: "alert-1", kind: "resolved" })], 100),
    );
    expect(payload.text).toBe("[RESOLVED:1] source=billing-api");
    expect(payload.attachments[0]?.text).toBe("[RESOLVED] [HIGH] cpu-high from billing-api (alert-1)");
    expect(payload.attachments[0]?.color).toBe("good");
  });
});

describe("email", () => {
  test("1,000 listed at most of 10,000 long rows: within the body bound, the rest counted", () => {
    const alerts = Array.from({ length: 10_000 }, (_, i) =>
      groupedAlert(i, { name: `<${"é".repeat(500)}>`, alertId: `alert-${i}-${"x".repeat(200)}` }),
    );
    const email = renderGroupEmail(groupMessage(alerts, 1000));
    expect(utf8Bytes(email.text) + utf8Bytes(email.html)).toBeLessThanOrEqual(emailBodyBytesMax);
    const rows = (email.html.match(/<tr>/g)?.length ?? 0) - 1;
    expect(rows).toBeGreaterThan(10);
    expect(rows).toBeLessThan(1000);
    expect(rows + moreIn(email.html)).toBe(10_000);
    expect(moreIn(email.text)).toBe(moreIn(email.html));
    expect(email.subject).toBe("[FIRING:10000] source=billing-api");
  });

  test("a window that fits is listed whole, without a count line", () => {
    const email = renderGroupEmail(groupMessage([groupedAlert(1), groupedAlert(2)], 100));
    expect(email.html.match(/<tr>/g)).toHaveLength(3);
    expect(email.text).not.toContain("more");
  });

  test("one row longer than the bound: none listed, counted", () => {
    const email = renderGroupEmail(groupMessage([groupedAlert(1, { name: "x".repeat(200_000) })], 100));
    expect(email.html.match(/<tr>/g)).toHaveLength(1);
    expect(moreIn(email.text)).toBe(1);
    expect(utf8Bytes(email.text) + utf8Bytes(email.html)).toBeLessThanOrEqual(emailBodyBytesMax);
  });
});
