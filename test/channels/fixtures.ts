import type { Endpoint, Notification } from "../../src/channels/types.ts";
import type { GroupMessage } from "../../src/core/group-payload.ts";

export function notification(overrides: Partial<Notification> = {}): Notification {
  return {
    id: "4242",
    clientId: "6f1c1f4e-2a4b-4e0e-9d8e-0c7b1f0e5a11",
    alertId: "alert-7",
    severity: "CRITICAL",
    source: "billing-api",
    name: "error rate above 5%",
    context: { region: "eu-west-1", errorRate: 0.071 },
    ruleIds: ["0a6a7cb4-8f3e-4b61-9b0c-1f3a9a9d5b22"],
    eventTime: new Date("2025-03-01T12:00:00.000Z"),
    ...overrides,
  };
}

export function endpoint(type: Endpoint["type"], value: string, secret: string | null = null): Endpoint {
  return {
    id: "9d1b7a52-3c4e-4f5a-8b6c-7d8e9f0a1b2c",
    clientId: notification().clientId,
    type,
    value,
    secret,
  };
}

/** A group window of `count` notifications of one source, listing at most `alertsMax`. */
export function groupMessage(count: number, alertsMax = 100): GroupMessage {
  return {
    groupKey: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    windowNo: 2,
    incarnation: 1_767_225_600_000,
    clientId: notification().clientId,
    labels: { source: "billing-api" },
    alertsMax,
    alerts: Array.from({ length: count }, (_, i) =>
      notification({
        id: String(5000 + i),
        alertId: `alert-${i}`,
        name: i === 0 ? "disk <full>" : "cpu-high",
      }),
    ),
  };
}
