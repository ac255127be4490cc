/** Group messages for the unit tests of their rendering (src/core, src/channels). */
import type { GroupedAlert, GroupMessage } from "../src/core/group-payload.ts";

/** The i-th alert of a window: its own id, alert id, host and second; `fields` override. */
export const groupedAlert = (i: number, fields: Partial<GroupedAlert> = {}): GroupedAlert => ({
  id: String(100 + i),
  alertId: `alert-${i}`,
  severity: "HIGH",
  source: "billing-api",
  name: "cpu-high",
  context: { host: `db-${i}`, region: "eu" },
  eventTime: new Date(Date.UTC(2025, 2, 1, 12, 0, i)),
  ...fields,
});

/** Window 3 of a group by source=billing-api, created at 2026-01-01T00:00:00Z. */
export const groupMessage = (alerts: GroupedAlert[], alertsMax = 100): GroupMessage => ({
  groupKey: "k1",
  windowNo: 3,
  incarnation: 1_767_225_600_000,
  clientId: "c1",
  labels: { source: "billing-api" },
  alertsMax,
  alerts,
});
