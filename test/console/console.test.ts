/**
 * The console in a real browser: headless Debian Chromium driven by playwright-core, against a whole
 * pipeline (every stage its own process, its own topics) whose rule-service serves the console. Logs
 * in with the admin token, creates a client, a rule with wildcards and a webhook endpoint through the
 * UI, drives alerts through the load panel, and watches the notification and its delivery appear;
 * also a version conflict on a rule edit and a test notification. Saves a dashboard screenshot to
 * results/console-dashboard.png.
 *
 * Installs nothing: Chromium must be at /usr/bin/chromium (apt-get install -y chromium).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { uniqueName } from "../../harness/names.ts";
import { type Pipeline, startPipeline } from "../../harness/pipeline.ts";
import { useTestSchema } from "../../harness/postgres.ts";
import { eventually } from "../../harness/stages.ts";
import { deadLetterTopic } from "../../src/runtime/topics.ts";

const db = useTestSchema("console");
const chromiumPath = "/usr/bin/chromium";
const repoRoot = new URL("../..", import.meta.url).pathname;
const screenshotPath = join(repoRoot, "results/console-dashboard.png");

let stack: Pipeline | undefined;
let browser: BrowserContext | undefined;
let profileDir: string | undefined;

/** The whole pipeline; the rule-service starts last, since its console scrapes the others' /metrics. */
function startStack(): Promise<Pipeline> {
  return startPipeline({
    postgresUrl: db.url,
    run: uniqueName("console"),
    ruleServiceEnvAfter: (stages, topics) => ({
      CONSOLE_STAGE_METRICS: stages.map((s) => `${s.name}=http://127.0.0.1:${s.httpPort}/metrics`).join(","),
      CONSOLE_SCRAPE_INTERVAL_MS: "1000",
      CONSOLE_ALERTS_TOPIC: topics.alertsNew,
      CONSOLE_NOTIFICATIONS_TOPIC: topics.notificationsReady,
      CONSOLE_DEAD_LETTER_TOPICS: Object.values(topics).map(deadLetterTopic).join(","),
    }),
  });
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `${chromiumPath} is missing: the console browser test needs Debian's Chromium. Install it with: apt-get install -y chromium`,
    );
  }
  stack = await startStack();
  profileDir = mkdtempSync(join(tmpdir(), "console-chromium-"));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await stack?.stop();
}, 60_000);

/** Picks a client in a client picker: types the name into its search box, then selects it. */
async function pickClient(page: Page, testid: string, name: string): Promise<void> {
  await page.getByTestId(`${testid}-search`).fill(name);
  const select = page.getByTestId(testid);
  const listed = await eventually(
    async () => (await select.locator("option").allTextContents()).includes(name),
    15_000,
    200,
  );
  expect(listed).toBe(true);
  await select.selectOption({ label: name });
}

test("the console drives the pipeline end to end in a real browser", async () => {
  const s = stack as Pipeline;
  const page = browser?.pages()[0] ?? (await (browser as BrowserContext).newPage());
  const consoleErrors: string[] = [];
  page.on("pageerror", (error) => consoleErrors.push(error.message));
  page.setDefaultTimeout(30_000);

  // Log in: a wrong token is refused, the admin token is accepted.
  await page.goto(`${s.httpUrl("rule-service")}/console`);
  await page.getByTestId("login-token").fill("not-a-valid-token");
  await page.getByTestId("login-submit").click();
  await page.getByText("That token is not valid.").waitFor();
  await page.getByTestId("login-token").fill(s.adminToken);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("who").getByText("admin").waitFor();

  // A client.
  const clientName = uniqueName("console-client");
  await page.getByTestId("nav-clients").click();
  await page.getByTestId("client-create-name").fill(clientName);
  await page.getByTestId("client-create-submit").click();
  await page.getByTestId("client-create-message").getByText("created").waitFor();
  await page.getByTestId("client-create-message").getByTestId("client-new-key").click();
  const clientKey = (await page.getByTestId("client-key").textContent()) as string;
  expect(clientKey).toStartWith("ak_");

  // A rule with wildcards: any severity, this test's source, any name.
  const source = `svc-${crypto.randomUUID()}`;
  const versionBefore = await s.rulesVersionApplied();
  await page.getByTestId("nav-rules").click();
  await pickClient(page, "rule-create-client", clientName);
  await page.getByTestId("rule-create-severity").selectOption("*");
  await page.getByTestId("rule-create-source").fill(source);
  await page.getByTestId("rule-create-name").fill("*");
  await page.getByTestId("rule-create-submit").click();
  await page.getByTestId("rule-create-message").getByText("Rule created").waitFor();

  // Edit with a version conflict: the rule changes behind the page's back, the save answers 409.
  await pickClient(page, "rules-filter-client", clientName);
  const ruleRow = page.getByTestId("rule-row").filter({ hasText: source });
  await ruleRow.waitFor();
  const ruleId = (await ruleRow.getAttribute("data-rule-id")) as string;
  await ruleRow.getByTestId("rule-edit").click();
  const behind = await fetch(`${s.httpUrl("rule-service")}/api/v1/rules/${ruleId}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${s.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ version: 1, name: "*" }),
  });
  expect(behind.status).toBe(200);
  await page.getByTestId("rule-edit-save").click();
  await page.getByTestId("rule-edit-message").getByText("409").waitFor();
  mkdirSync(join(repoRoot, "results"), { recursive: true });
  await page.screenshot({ path: join(repoRoot, "results/console-rules.png"), fullPage: true });
  await page.getByTestId("rule-edit-reload").click();
  await page.getByText("editing version 2").waitFor();
  // Delivery settings ride along with the edit; a repeat interval changes nothing this test counts.
  await page.getByTestId("rule-edit-form").getByText("delivery: grouping").click();
  await page.getByTestId("rule-edit-repeat").fill("600000");
  await page.getByTestId("rule-edit-save").click();
  await page.getByTestId("rules-message").getByText("Rule saved (version 3)").waitFor();
  await ruleRow.getByText("repeat 600 s").waitFor();
  const saved = await fetch(`${s.httpUrl("rule-service")}/api/v1/rules/${ruleId}`, {
    headers: { authorization: `Bearer ${s.adminToken}` },
  });
  expect(await saved.json()).toMatchObject({
    repeat_interval_ms: 600_000,
    send_resolved: true,
    group_by: [],
  });

  // A webhook endpoint on the pipeline's sink.
  await ruleRow.getByTestId("rule-endpoints").click();
  await page.getByTestId("endpoint-create-type").selectOption("webhook");
  await page.getByTestId("endpoint-create-value").fill(s.sink.url("/hook/console"));
  await page.getByTestId("endpoint-create-submit").click();
  await page.getByTestId("endpoint-row").first().waitFor();

  // The evaluator must have the rule before alerts can match it.
  expect(await eventually(async () => (await s.rulesVersionApplied()) > versionBefore, 20_000)).toBe(true);

  // Alerts through the load panel: 5 alerts/s for 1 s, all from this test's source.
  await page.getByTestId("nav-load").click();
  await page.getByTestId("load-rate").fill("5");
  await page.getByTestId("load-duration").fill("1");
  await page.getByTestId("load-severities").fill("HIGH");
  await page.getByTestId("load-sources").fill(source);
  await page.getByTestId("load-names").fill("disk-full");
  await page.getByTestId("load-start").click();
  await page.locator("[data-testid=load-progress] [data-running=false]").waitFor();
  expect(
    await eventually(async () => (await page.getByTestId("load-acknowledged").textContent()) === "5", 10_000),
  ).toBe(true);

  // The notifications appear, filtered by the client, and one of them shows its delivery.
  await page.getByTestId("nav-notifications").click();
  await pickClient(page, "notifications-filter-client", clientName);
  expect(
    await eventually(async () => (await page.getByTestId("notification-row").count()) === 5, 30_000, 250),
  ).toBe(true);
  await page.getByTestId("notification-row").first().click();
  await page.locator("[data-testid=notification-detail][data-status=SENT]").waitFor({ timeout: 30_000 });
  await page.locator("[data-testid=delivery-row][data-outcome=SUCCESS]").first().waitFor();
  expect(s.sink.received.filter((r) => r.path === "/hook/console").length).toBeGreaterThanOrEqual(5);

  // A test notification from the endpoint's button is delivered too.
  await page.goto(`${s.httpUrl("rule-service")}/console#endpoints/${ruleId}`);
  await page.getByTestId("endpoint-test").first().click();
  await page.getByTestId("endpoints-message").getByText("Test notification").waitFor();
  await page.getByTestId("endpoints-message").locator("a").click();
  await page.locator("[data-testid=notification-detail][data-status=SENT]").waitFor({ timeout: 30_000 });
  await page.locator("[data-testid=delivery-row][data-outcome=SUCCESS]").first().waitFor();

  await page.screenshot({ path: join(repoRoot, "results/console-notification.png"), fullPage: true });

  // Background traffic for the charts (these alerts match no rule): 100 alerts/s for 8 s.
  await page.getByTestId("nav-load").click();
  await page.getByTestId("load-rate").fill("100");
  await page.getByTestId("load-duration").fill("8");
  await page.getByTestId("load-sources").fill("api:4,db:2,web:1");
  await page.getByTestId("load-start").click();
  await page.locator("[data-testid=load-progress] [data-running=true]").waitFor();
  await Bun.sleep(3000);
  await page.screenshot({ path: join(repoRoot, "results/console-load.png"), fullPage: true });

  // The dashboard: stage charts with samples, notifications by status, delivery rates, rules version.
  await page.getByTestId("nav-dashboard").click();
  await Bun.sleep(4000);
  // "attached", not "visible": a flat line (no traffic in a stage yet) has no height.
  await page.getByTestId("chart-consumed").locator("path").first().waitFor({ state: "attached" });
  await page.getByTestId("rules-version").first().waitFor();
  await page.getByTestId("delivery-rates").getByText("webhook").waitFor();
  await page.getByTestId("notifications-by-status").waitFor();
  await page.screenshot({ path: screenshotPath, fullPage: true });

  // A client API key sees only its client: no admin pages, only its own notifications.
  await page.getByTestId("logout").click();
  await page.getByTestId("login-token").fill(clientKey);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("who").getByText(clientName).waitFor();
  expect(await page.getByTestId("nav-clients").count()).toBe(0);
  expect(await page.getByTestId("nav-load").count()).toBe(0);
  await page.getByTestId("nav-notifications").click();
  expect(
    await eventually(async () => (await page.getByTestId("notification-row").count()) === 6, 10_000),
  ).toBe(true);

  expect(consoleErrors).toEqual([]);
}, 180_000);

test("the keys page lists, creates and revokes API keys and ingest credentials", async () => {
  const s = stack as Pipeline;
  const page = await (browser as BrowserContext).newPage();
  const consoleErrors: string[] = [];
  page.on("pageerror", (error) => consoleErrors.push(error.message));
  page.setDefaultTimeout(30_000);
  const apiCall = (method: string, path: string, token: string, body?: unknown) =>
    fetch(`${s.httpUrl("rule-service")}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const clientName = uniqueName("console-keys");
  const client = await (await apiCall("POST", "/api/v1/clients", s.adminToken, { name: clientName })).json();
  const clientKey = (
    await (await apiCall("POST", `/api/v1/clients/${client.id}/api-keys`, s.adminToken)).json()
  ).key as string;
  const signIn = async (token: string) => {
    await page.goto(`${s.httpUrl("rule-service")}/console#keys`);
    await page.getByTestId("login-token").fill(token);
    await page.getByTestId("login-submit").click();
    await page.getByTestId("who").waitFor();
    await page.getByTestId("nav-keys").click();
  };

  // The client: its own key is listed; it makes a second key and an ingest credential, each shown once.
  await signIn(clientKey);
  await page.getByTestId("api-key-row").first().waitFor();
  expect(await page.getByTestId("api-key-row").count()).toBe(1);
  await page.getByTestId("api-key-create-name").fill("second");
  await page.getByTestId("api-key-create-submit").click();
  const secondKey = (await page.getByTestId("api-key-secret").textContent()) as string;
  expect(secondKey).toStartWith("ak_");
  await page.getByTestId("ingest-credential-create-name").fill("prometheus");
  await page.getByTestId("ingest-credential-create-submit").click();
  const ingestSecret = (await page.getByTestId("ingest-credential-secret").textContent()) as string;
  expect(ingestSecret).toStartWith("ik_");
  await page.getByTestId("ingest-credential-row").getByText(`client:${client.id}`).waitFor();

  // Revoking the second key in the page refuses it from the next request on.
  expect((await apiCall("GET", `/api/v1/clients/${client.id}`, secondKey)).status).toBe(200);
  const secondRow = page.getByTestId("api-key-row").filter({ hasText: "second" });
  await secondRow.getByTestId("api-key-revoke").click();
  await secondRow.getByTestId("api-key-state").getByText("revoked").waitFor();
  expect((await apiCall("GET", `/api/v1/clients/${client.id}`, secondKey)).status).toBe(401);

  // The admin picks the client and sees both keys and the credential, then revokes the credential.
  await page.getByTestId("logout").click();
  await signIn(s.adminToken);
  await pickClient(page, "keys-client", clientName);
  expect(
    await eventually(async () => (await page.getByTestId("api-key-row").count()) === 2, 10_000, 100),
  ).toBe(true);
  const credentialRow = page.getByTestId("ingest-credential-row").filter({ hasText: "prometheus" });
  await credentialRow.getByTestId("ingest-credential-revoke").click();
  await credentialRow.getByTestId("ingest-credential-state").getByText("revoked").waitFor();
  const listed = await (
    await apiCall("GET", `/api/v1/ingest-credentials?client_id=${client.id}`, s.adminToken)
  ).json();
  expect(listed.items.map((c: { revoked_at: string | null }) => c.revoked_at !== null)).toEqual([true]);
  expect(JSON.stringify(listed)).not.toContain(ingestSecret);

  await page.screenshot({ path: join(repoRoot, "results/console-keys.png"), fullPage: true });
  await page.close();
  expect(consoleErrors).toEqual([]);
}, 120_000);

test("a client sees why its notifications were SILENCED, and manages its silences", async () => {
  const s = stack as Pipeline;
  const page = await (browser as BrowserContext).newPage();
  const consoleErrors: string[] = [];
  page.on("pageerror", (error) => consoleErrors.push(error.message));
  page.setDefaultTimeout(30_000);
  const apiCall = async (method: string, path: string, token: string, body?: unknown) =>
    (
      await fetch(`${s.httpUrl("rule-service")}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    ).json();
  const client = await apiCall("POST", "/api/v1/clients", s.adminToken, {
    name: uniqueName("console-silences"),
  });
  const other = await apiCall("POST", "/api/v1/clients", s.adminToken, { name: uniqueName("console-other") });
  const clientKey = (await apiCall("POST", `/api/v1/clients/${client.id}/api-keys`, s.adminToken))
    .key as string;
  const rule = await apiCall("POST", "/api/v1/rules", s.adminToken, {
    client_id: client.id,
    severity: "HIGH",
    source: "db-1",
    name: "DiskFull",
  });
  const endsAt = new Date(Date.now() + 3_600_000).toISOString();
  const othersSilence = await apiCall("POST", "/api/v1/silences", s.adminToken, {
    client_id: other.id,
    matchers: 'source="db-1"',
    ends_at: endsAt,
    created_by: "ops",
    comment: "not yours",
  });

  // The client creates a silence in the page; the other client's is not listed.
  await page.goto(`${s.httpUrl("rule-service")}/console#silences`);
  await page.getByTestId("login-token").fill(clientKey);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("nav-silences").click();
  await page.getByTestId("silence-create-matchers").fill('{source="db-1", name=~"Disk.*"}');
  await page.getByTestId("silence-create-comment").fill("disk swap");
  await page.getByTestId("silence-create-submit").click();
  const silenceId = (await page.getByTestId("silence-created-id").textContent()) as string;
  await page
    .locator(`[data-silence-id="${silenceId}"]`)
    .getByText('{source="db-1", name=~"Disk.*"}')
    .waitFor();
  expect(await page.locator(`[data-silence-id="${othersSilence.id}"]`).count()).toBe(0);

  // Two notifications the aggregator wrote SILENCED: one by the silence, one by the rule's mute window.
  const insert = (alertId: string, silencedBy: string | null, mutedByRule: string | null) => s.sql`
    INSERT INTO notifications (client_id, scope, alert_id, severity, source, name, context, rule_ids, event_time,
                               status, silenced_by, muted_by_rule)
    VALUES (${client.id}, ${`client:${client.id}`}, ${alertId}, 'HIGH', 'db-1', 'DiskFull', '{}',
            ${[rule.id]}::uuid[], now(), 'SILENCED', ${silencedBy}, ${mutedByRule})`;
  await insert("by-silence", silenceId, null);
  await insert("by-mute-window", null, rule.id);
  await page.getByTestId("nav-notifications").click();
  await page.getByTestId("notifications-filter-status").selectOption("SILENCED");
  await page
    .getByTestId("silenced-by")
    .getByText(`silence ${silenceId.slice(0, 8)}`)
    .waitFor();
  await page
    .getByTestId("muted-by-rule")
    .getByText(`mute window of rule ${rule.id.slice(0, 8)}`)
    .waitFor();
  await page
    .getByTestId("notification-row")
    .filter({ has: page.getByTestId("silenced-by") })
    .click();
  const why = page.getByTestId("notification-suppression");
  await why.getByText('{source="db-1", name=~"Disk.*"}').waitFor();
  await why.getByText("disk swap").waitFor();

  // From there to the silence, which the client expires.
  await why.getByTestId("silenced-by").click();
  const silenceRow = page.locator(`[data-silence-id="${silenceId}"]`);
  await silenceRow.getByTestId("silence-expire").click();
  await silenceRow.getByTestId("silence-state").getByText("expired").waitFor();
  const after = await apiCall("GET", `/api/v1/silences/${silenceId}`, s.adminToken);
  expect(after.state).toBe("expired");
  expect((await apiCall("GET", `/api/v1/silences/${othersSilence.id}`, s.adminToken)).state).toBe("active");

  await page.screenshot({ path: join(repoRoot, "results/console-silences.png"), fullPage: true });
  await page.close();
  await s.sql`DELETE FROM notifications WHERE client_id = ${client.id}`;
  expect(consoleErrors).toEqual([]);
}, 120_000);

test("a grouped notification shows the group message it went out in", async () => {
  const s = stack as Pipeline;
  const versionBefore = await s.rulesVersionApplied();
  const { clientId } = await s.createClientWithRule("console-grouped", {
    group_by: ["name"],
    group_wait_ms: 500,
    group_interval_ms: 1000,
  });
  // The rule service built a snapshot with the rule, and the evaluator applied it.
  expect(await eventually(async () => (await s.rulesVersionApplied()) > versionBefore, 15_000)).toBe(true);
  const ids = [0, 1, 2].map((i) => `console-grp-${s.run}-${i}`);
  await s.producer.send(
    ids.map((id) => ({ topic: s.topics.alertsNew, key: id, value: s.alert(id, "console-grouped") })),
  );
  const rows = async () =>
    db.sql<{ id: string; status: string; group_key: string }[]>`
      SELECT id::text, status, group_key FROM notifications WHERE client_id = ${clientId} ORDER BY id`;
  expect(
    await eventually(async () => (await rows()).filter((r) => r.status === "SENT").length === 3, 30_000, 200),
  ).toBe(true);
  const [first] = await rows();
  if (first === undefined) throw new Error("no notification");

  const page = await (browser as BrowserContext).newPage();
  const consoleErrors: string[] = [];
  page.on("pageerror", (error) => consoleErrors.push(error.message));
  page.setDefaultTimeout(30_000);
  await page.goto(`${s.httpUrl("rule-service")}/console#notification/${first.id}`);
  if ((await page.getByTestId("login-token").count()) > 0) {
    await page.getByTestId("login-token").fill(s.adminToken);
    await page.getByTestId("login-submit").click();
  }
  const card = page.getByTestId("group-send");
  await card.waitFor();
  const [group] = await s.sql<{ incarnation: string }[]>`
    SELECT incarnation::text FROM notification_groups WHERE group_key = ${first.group_key}`;
  await card.getByText(`group-${first.group_key}-${group?.incarnation}-0`).waitFor();
  await card.getByText("alertname=console-grouped").waitFor();
  await card
    .locator("[data-testid=delivery-row][data-outcome=SUCCESS]")
    .getByText("webhook (3 alerts)")
    .waitFor();
  expect(await page.getByTestId("deliveries-table").count()).toBe(0);
  await page.screenshot({ path: join(repoRoot, "results/console-group-send.png"), fullPage: true });
  expect(consoleErrors).toEqual([]);
  await page.close();
}, 60_000);
