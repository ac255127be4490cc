import { describe, expect, test } from "bun:test";
import {
  commonLabels,
  type GroupedAlert,
  type GroupMessage,
  groupHeadline,
  groupMessageKey,
  groupStatus,
  groupSummaryLines,
  groupTableRows,
  listedAlerts,
  webhookGroupPayload,
} from "./group-payload.ts";

const alert = (i: number, fields: Partial<GroupedAlert> = {}): GroupedAlert => ({
  id: String(100 + i),
  alertId: `alert-${i}`,
  severity: "HIGH",
  source: "billing-api",
  name: "cpu-high",
  context: { host: `db-${i}`, region: "eu" },
  eventTime: new Date(Date.UTC(2025, 2, 1, 12, 0, i)),
  ...fields,
});

const message = (alerts: GroupedAlert[], alertsMax = 100): GroupMessage => ({
  groupKey: "k1",
  windowNo: 3,
  clientId: "c1",
  labels: { source: "billing-api" },
  alertsMax,
  alerts,
});

describe("status", () => {
  test("firing while any alert fires; resolved only when all resolved", () => {
    expect(groupStatus(message([alert(1), alert(2, { kind: "resolved" })]))).toBe("firing");
    expect(groupStatus(message([alert(1, { kind: "resolved" })]))).toBe("resolved");
    expect(groupStatus(message([alert(1, { kind: "repeat:2" })]))).toBe("firing");
  });
});

describe("listing", () => {
  test("up to alertsMax listed, the rest counted", () => {
    const all = Array.from({ length: 7 }, (_, i) => alert(i));
    const { listed, more } = listedAlerts(message(all, 3));
    expect(listed.map((a) => a.id)).toEqual(["100", "101", "102"]);
    expect(more).toBe(4);
    expect(listedAlerts(message(all, 3), 10).more).toBe(4);
    expect(listedAlerts(message(all, 10), 2).more).toBe(5);
    expect(groupSummaryLines(message(all, 100), 2)).toEqual([
      "[FIRING] [HIGH] cpu-high from billing-api (alert-0)",
      "[FIRING] [HIGH] cpu-high from billing-api (alert-1)",
      "and 5 more",
    ]);
    expect(groupTableRows(message(all, 2))).toHaveLength(2);
  });
});

describe("webhook document", () => {
  test("Alertmanager's version 4 shape, every notification and alert id, the truncated count", () => {
    const now = new Date(Date.UTC(2025, 2, 1, 13));
    const payload = webhookGroupPayload(message([alert(1), alert(2, { kind: "resolved" }), alert(3)], 2), {
      receiver: "ep-1",
      externalUrl: "https://alerts.example",
      now,
    });
    expect(payload).toEqual({
      version: "4",
      groupKey: "k1",
      truncatedAlerts: 1,
      status: "firing",
      receiver: "ep-1",
      groupLabels: { source: "billing-api" },
      commonLabels: { alertname: "cpu-high", severity: "HIGH", source: "billing-api", region: "eu" },
      commonAnnotations: {},
      externalURL: "https://alerts.example",
      alerts: [
        {
          status: "firing",
          labels: {
            host: "db-1",
            region: "eu",
            alertname: "cpu-high",
            severity: "HIGH",
            source: "billing-api",
          },
          annotations: {},
          startsAt: "2025-03-01T12:00:01.000Z",
          endsAt: "0001-01-01T00:00:00Z",
          generatorURL: "",
          fingerprint: "alert-1",
          notificationId: "101",
          alertId: "alert-1",
          kind: "firing",
        },
        {
          status: "resolved",
          labels: {
            host: "db-2",
            region: "eu",
            alertname: "cpu-high",
            severity: "HIGH",
            source: "billing-api",
          },
          annotations: {},
          startsAt: "2025-03-01T12:00:02.000Z",
          endsAt: now.toISOString(),
          generatorURL: "",
          fingerprint: "alert-2",
          notificationId: "102",
          alertId: "alert-2",
          kind: "resolved",
        },
      ],
      clientId: "c1",
      windowNo: 3,
      notificationIds: ["101", "102", "103"],
      alertIds: ["alert-1", "alert-2", "alert-3"],
    });
  });

  test("common labels keep only what every alert shares", () => {
    expect(commonLabels([])).toEqual({});
    expect(commonLabels([alert(1), alert(2, { severity: "LOW" })])).toEqual({
      alertname: "cpu-high",
      source: "billing-api",
      region: "eu",
    });
  });

  test("headline and key; a line break in a label value cannot forge a header", () => {
    const m = { ...message([alert(1), alert(2)]), labels: { source: "a\r\nBcc: x" } };
    expect(groupHeadline(m)).toBe("[FIRING:2] source=a Bcc: x");
    expect(groupMessageKey(m)).toBe("group-k1-3");
  });
});
