import { afterAll, describe, expect, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import {
  createClient,
  createRule,
  insertNotification,
  insertWindowInFlight,
  type Service,
  startService,
} from "./helpers.ts";

const db = useTestSchema("rule_service_notifications");
const service: Service = startService(db);
afterAll(() => service.stop());

describe("notifications", () => {
  test("get one with its delivery attempts", async () => {
    const client = await createClient(service);
    const { id, deliveryIds } = await insertNotification(service.sql, client.id, "SENT");
    const reply = await service.call("GET", `/api/v1/notifications/${id}`, { token: client.key });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id, client_id: client.id, status: "SENT", context: { host: "h1" } });
    expect(reply.body).not.toHaveProperty("lease_until");
    expect(reply.body.deliveries.map((d: { id: string }) => d.id)).toEqual(deliveryIds);
    expect(reply.body.deliveries[0]).toMatchObject({
      outcome: "RETRYABLE",
      http_status: 503,
      latency_ms: 12,
    });
  });

  test("a grouped one names its group message: window, Idempotency-Key, its attempts, which carried it", async () => {
    const client = await createClient(service);
    const other = await createClient(service);
    const { id } = await insertNotification(service.sql, client.id, "SENT");
    const key = crypto.randomUUID().replaceAll("-", "");
    const [group] = await service.sql<{ incarnation: string }[]>`
      INSERT INTO notification_groups (group_key, client_id, labels, group_interval_ms, group_alerts_max, next_due_at, next_window)
      VALUES (${key}, ${client.id}, ${service.sql.json({ source: "db" })}, 1000, 100, now(), 4)
      RETURNING incarnation::text`;
    const [send] = await service.sql<{ id: string }[]>`
      INSERT INTO group_sends (client_id, group_key, window_no, alerts, status)
      VALUES (${client.id}, ${key}, 3, 12, 'SENT') RETURNING id::text`;
    const sendId = (send as { id: string }).id;
    // The window spans two rules: the notification's own (its address also stands under the other
    // rule's endpoint row the send recorded) and another rule's endpoint, which did not carry it.
    const [own, otherRule] = [await createRule(service, client), await createRule(service, client)];
    const endpoint = async (ruleId: string, value: string) => {
      const [row] = await service.sql<{ id: string }[]>`
        INSERT INTO endpoints (rule_id, client_id, type, value)
        VALUES (${ruleId}, ${client.id}, 'webhook', ${value}) RETURNING id`;
      return (row as { id: string }).id;
    };
    await endpoint(own.id, "https://a.example/hook");
    const sameAddress = await endpoint(otherRule.id, "https://a.example/hook");
    const elsewhere = await endpoint(otherRule.id, "https://b.example/hook");
    for (const endpointId of [sameAddress, elsewhere])
      await service.sql`
        INSERT INTO group_deliveries (group_send_id, endpoint_id, channel, alerts, outcome, http_status, latency_ms)
        VALUES (${sendId}, ${endpointId}, 'webhook', 12, 'SUCCESS', 200, 9)`;
    await service.sql`
      UPDATE notifications SET group_key = ${key}, group_due_at = now(), group_send_id = ${sendId},
        rule_ids = ${service.sql.array([own.id])}::uuid[] WHERE id = ${id}`;

    const reply = await service.call("GET", `/api/v1/notifications/${id}`, { token: client.key });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ group_key: key, group_send_id: sendId });
    expect(reply.body.group_send).toMatchObject({
      id: sendId,
      group_key: key,
      window_no: 3,
      idempotency_key: `group-${key}-${group?.incarnation}-3`,
      labels: { source: "db" },
      alerts: 12,
      status: "SENT",
    });
    expect(reply.body.group_send.deliveries).toHaveLength(2);
    expect(reply.body.group_send.deliveries).toMatchObject([
      { endpoint_id: sameAddress, alerts: 12, outcome: "SUCCESS", http_status: 200, carried: true },
      { endpoint_id: elsewhere, carried: false },
    ]);
    const listed = await service.call("GET", `/api/v1/notifications?client_id=${client.id}`);
    expect(listed.body.items[0]).toMatchObject({ id, group_send_id: sendId });
    // Another tenant sees neither the notification nor its group.
    expect((await service.call("GET", `/api/v1/notifications/${id}`, { token: other.key })).status).toBe(404);
    const ungrouped = await insertNotification(service.sql, client.id, "SENT");
    const plain = await service.call("GET", `/api/v1/notifications/${ungrouped.id}`, { token: client.key });
    expect(plain.body).toMatchObject({ group_key: null, group_send_id: null, group_send: null });
  });

  test("a grouped one in a window in flight (not written yet) shows SENDING and the window", async () => {
    const client = await createClient(service);
    const { waiting, inFlight, sendId } = await insertWindowInFlight(service.sql, client.id);

    const one = await service.call("GET", `/api/v1/notifications/${inFlight.id}`, { token: client.key });
    expect(one.body).toMatchObject({ status: "SENDING", group_send_id: sendId });
    expect(one.body.group_send).toMatchObject({ id: sendId, status: "SENDING", window_no: 0 });
    const other = await service.call("GET", `/api/v1/notifications/${waiting.id}`, { token: client.key });
    expect(other.body).toMatchObject({ status: "RECEIVED", group_send_id: null, group_send: null });

    const listed = async (status: string) =>
      (
        await service.call("GET", `/api/v1/notifications?client_id=${client.id}&status=${status}`)
      ).body.items.map((n: { id: string; status: string; group_send_id: string | null }) => [
        n.id,
        n.status,
        n.group_send_id,
      ]);
    expect(await listed("SENDING")).toEqual([[inFlight.id, "SENDING", sendId]]);
    expect(await listed("RECEIVED")).toEqual([[waiting.id, "RECEIVED", null]]);
    // Once the window's outcome is recorded, the row is written and shown as stored.
    await service.sql`UPDATE group_sends SET status = 'SENT' WHERE id = ${sendId}`;
    await service.sql`UPDATE notifications SET status = 'SENT', group_send_id = ${sendId} WHERE id = ${inFlight.id}`;
    expect(await listed("SENT")).toEqual([[inFlight.id, "SENT", sendId]]);
    expect(await listed("SENDING")).toEqual([]);
  });

  test("list by client_id and status", async () => {
    const client = await createClient(service);
    const sent = await insertNotification(service.sql, client.id, "SENT");
    const failed = await insertNotification(service.sql, client.id, "FAILED");
    const ids = async (query: string, token?: string) =>
      (await service.call("GET", `/api/v1/notifications?${query}`, { token })).body.items.map(
        (n: { id: string }) => n.id,
      );
    expect(await ids(`client_id=${client.id}`)).toEqual([sent.id, failed.id]);
    expect(await ids(`client_id=${client.id}&status=FAILED`)).toEqual([failed.id]);
    expect(await ids("status=SENT", client.key)).toEqual([sent.id]);
    expect(await ids("status=RETRY", client.key)).toEqual([]);
    const bad = await service.call("GET", "/api/v1/notifications?status=LOST");
    expect(bad.body.error.fields).toHaveProperty("status");
  });

  test("a row muted by a rule's window shows the rule, its episode and kind; another tenant sees nothing", async () => {
    const client = await createClient(service);
    const other = await createClient(service);
    const ruleId = crypto.randomUUID();
    const [row] = await service.sql<{ id: string }[]>`
      INSERT INTO notifications (client_id, scope, alert_id, severity, source, name, context, rule_ids, event_time,
                                 status, muted_by_rule, episode, kind)
      VALUES (${client.id}, ${`client:${client.id}`}, 'am-muted', 'HIGH', 'src', 'cpu', '{}', ${[ruleId]}::uuid[], now(),
              'SILENCED', ${ruleId}, 2, 'resolved')
      RETURNING id::text`;
    const id = (row as { id: string }).id;
    const reply = await service.call("GET", `/api/v1/notifications/${id}`, { token: client.key });
    expect(reply.body).toMatchObject({
      status: "SILENCED",
      silenced_by: null,
      muted_by_rule: ruleId,
      episode: 2,
      kind: "resolved",
    });
    const listed = await service.call("GET", "/api/v1/notifications?status=SILENCED", { token: client.key });
    expect(listed.body.items.map((n: { id: string }) => n.id)).toEqual([id]);
    expect((await service.call("GET", `/api/v1/notifications/${id}`, { token: other.key })).status).toBe(404);
  });

  test("unknown ids are 404; malformed ids 400", async () => {
    expect((await service.call("GET", "/api/v1/notifications/9223372036854775807")).status).toBe(404);
    for (const id of ["0", "-1", "abc", "9223372036854775808", "1.5", crypto.randomUUID()]) {
      const reply = await service.call("GET", `/api/v1/notifications/${id}`);
      expect(reply.status).toBe(400);
      expect(reply.body.error.fields).toHaveProperty("id");
    }
  });
});
