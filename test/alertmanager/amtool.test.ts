/**
 * Debian's real amtool (0.25) against the ingest server's Alertmanager API: each command exits 0 and
 * does what it does against an Alertmanager, with an ingest credential in --http.config.file.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { useTestSchema } from "../../harness/postgres.ts";
import { type AmtoolResult, amtool, insertNotification, useServerWithTwoClients } from "./helpers.ts";

// Each amtool run is a process start and a few requests; on a busy machine a test of several runs
// can take seconds.
setDefaultTimeout(30_000);

const db = useTestSchema("am_amtool");
const { sql } = db;
const { server, clientA, clientB } = useServerWithTwoClients(db);

const asA = (...args: string[]) => amtool(server.url, clientA.secret, args);
const asB = (...args: string[]) => amtool(server.url, clientB.secret, args);

async function minutesLeft(silenceId: string): Promise<number> {
  const [row] = await sql<{ minutes: number }[]>`
    SELECT EXTRACT(EPOCH FROM ends_at - now())::float8 / 60 AS minutes FROM silences WHERE id = ${silenceId}`;
  return row?.minutes ?? Number.NaN;
}

function succeeded(result: AmtoolResult): string {
  expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: "" });
  return result.stdout;
}

describe("status", () => {
  test("config show prints the client's configuration", async () => {
    const output = succeeded(await asA("config", "show"));
    expect(output).toContain("route:");
    expect(output).toContain(`receiver: "client/${clientA.id}"`);
  });

  test("cluster show reports a ready cluster", async () => {
    expect(succeeded(await asA("cluster", "show"))).toContain("Cluster Status:  ready");
  });

  test("without a credential amtool fails and says why", async () => {
    const result = await amtool(server.url, undefined, ["silence", "query"]);
    expect(result.exitCode).not.toBe(0);
  });
});

describe("silences", () => {
  test("add, query, expire: as with Alertmanager", async () => {
    const name = `DiskFull${Date.now()}`;
    const id = succeeded(
      await asA(
        "silence",
        "add",
        `alertname=${name}`,
        "env=~prod-.*",
        "--author=amtool-test",
        "--comment=maintenance",
        "--duration=1h",
      ),
    ).trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // Quiet output is the ids of the silences that match the filter, active and pending only.
    expect(succeeded(await asA("silence", "query", "-q", `alertname=${name}`)).trim()).toBe(id);
    const table = succeeded(await asA("silence", "query", `alertname=${name}`));
    expect(table).toContain(id);
    expect(table).toContain("amtool-test");
    expect(table).toContain("maintenance");
    // The matchers as Alertmanager prints them.
    expect(table).toContain(`alertname="${name}"`);
    expect(table).toContain('env=~"prod-.*"');
    expect(await minutesLeft(id)).toBeCloseTo(60, 0);

    succeeded(await asA("silence", "expire", id));
    expect(succeeded(await asA("silence", "query", "-q", `alertname=${name}`)).trim()).toBe("");
    expect(succeeded(await asA("silence", "query", "-q", "--expired", `alertname=${name}`)).trim()).toBe(id);
  });

  test("a first argument without an operator is an alertname, as amtool makes it", async () => {
    const name = `Bare${Date.now()}`;
    const id = succeeded(await asA("silence", "add", name, "--comment=c")).trim();
    const [row] = (await sql`SELECT matchers FROM silences WHERE id = ${id}`) as [{ matchers: unknown }];
    expect(row.matchers).toEqual([{ name: "alertname", value: name, isRegex: false, isEqual: true }]);
  });

  test("update extends a silence in place", async () => {
    const id = succeeded(
      await asA("silence", "add", `alertname=Upd${Date.now()}`, "--comment=c", "--duration=1h"),
    ).trim();
    succeeded(await asA("silence", "update", id, "--duration=3h"));
    expect(await minutesLeft(id)).toBeCloseTo(180, 0);
  });

  test("what amtool lets through but we refuse comes back as a 400 amtool can print", async () => {
    // amtool checks Go regex syntax itself (job=~"(unclosed" never reaches us, as with Alertmanager).
    const parsedByAmtool = await asA("silence", "add", "alertname=x", "job=~(unclosed", "--comment=c");
    expect(parsedByAmtool.exitCode).not.toBe(0);
    const longComment = await asA("silence", "add", "alertname=x", `--comment=${"x".repeat(5000)}`);
    expect(longComment.exitCode).not.toBe(0);
    expect(longComment.stderr).toContain("comment: longer than 4096 characters");
    const unicodeClass = await asA("silence", "add", "alertname=x", "job=~\\pL+", "--comment=c");
    expect(unicodeClass.exitCode).not.toBe(0);
    expect(unicodeClass.stderr).toContain(
      "postSilencesBadRequest  matchers[1].value: invalid regular expression: Unicode",
    );
  });

  test("client B neither sees nor expires client A's silence", async () => {
    const name = `Tenant${Date.now()}`;
    const id = succeeded(await asA("silence", "add", `alertname=${name}`, "--comment=A")).trim();
    expect(succeeded(await asB("silence", "query", "-q", "--expired", `alertname=${name}`)).trim()).toBe("");
    const expire = await asB("silence", "expire", id);
    expect(expire.exitCode).not.toBe(0);
    // amtool 0.25's client knows no 404 for this call, so it prints the bare status.
    expect(expire.stderr).toContain("status 404");
    expect(succeeded(await asA("silence", "query", "-q", `alertname=${name}`)).trim()).toBe(id);
  });

  test("basic auth in the URL works like the config file (Prometheus's basic_auth)", async () => {
    const url = new URL(server.url);
    url.username = "prometheus";
    url.password = clientA.secret;
    const result = await amtool(url.toString(), undefined, ["silence", "query", "-q"]);
    expect(result.exitCode).toBe(0);
  });
});

describe("alerts", () => {
  test("alert add goes to ingest on the same base URL", async () => {
    const added = await asA(
      "alert",
      "add",
      `alertname=Added${Date.now()}`,
      "severity=critical",
      "instance=db-1",
      "--annotation=summary=added by amtool",
    );
    expect(succeeded(added)).toBe("");
  });

  test("alert query lists the client's alerts; a silenced one only with --silenced", async () => {
    const name = `HighLoad${Date.now()}`;
    await insertNotification(sql, clientA.id, {
      alertId: "am-0123456789abcdef",
      severity: "CRITICAL",
      source: "db-1",
      name,
      context: { env: "prod", "annotation.summary": "load is high" },
    });
    await insertNotification(sql, clientB.id, {
      alertId: "b-1",
      severity: "LOW",
      source: "web-1",
      name: `${name}B`,
      context: {},
    });
    const listed = succeeded(await asA("alert", "query"));
    expect(listed).toContain(name);
    expect(listed).not.toContain(`${name}B`);
    expect(succeeded(await asA("alert", "query", "severity=critical", "source=db-1"))).toContain(name);
    expect(succeeded(await asA("alert", "query", "severity=low"))).not.toContain(name);

    const id = succeeded(await asA("silence", "add", `alertname=${name}`, "env=prod", "--comment=c")).trim();
    expect(succeeded(await asA("alert", "query", `alertname=${name}`))).not.toContain(name);
    const silenced = succeeded(await asA("alert", "query", "--silenced", `alertname=${name}`));
    expect(silenced).toContain(name);
    const extended = succeeded(await asA("alert", "query", "-o", "json", "--silenced", `alertname=${name}`));
    const [alert] = JSON.parse(extended) as {
      fingerprint: string;
      status: { state: string; silencedBy: string[] };
    }[];
    expect(alert).toMatchObject({
      fingerprint: "0123456789abcdef",
      status: { state: "suppressed", silencedBy: [id] },
    });
  });
});
