// A real SMTP server (test/channels/smtp-sink.ts) on loopback; nodemailer talks to it over plain TCP.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmailChannel, type SmtpConfig, SmtpConfigError } from "../../src/channels/email.ts";
import { endpoint, groupMessage, notification } from "./fixtures.ts";
import { queuedReply, type SmtpSink, startSmtpSink } from "./smtp-sink.ts";

const smtpError = (responseCode: number, message: string) =>
  Object.assign(new Error(message), { responseCode });

let smtp: SmtpSink;
const tempDir = mkdtempSync(join(tmpdir(), "email-channel-"));
const channels: EmailChannel[] = [];

beforeAll(async () => {
  smtp = await startSmtpSink({
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      if (auth.username === "alerts" && auth.password === "pa55word") callback(null, { user: auth.username });
      else callback(smtpError(535, "Authentication failed"));
    },
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith("unknown")) callback(smtpError(550, "No such user here"));
      else if (address.address.startsWith("greylisted"))
        callback(smtpError(451, "Greylisted, try again later"));
      else callback();
    },
  });
});
afterAll(async () => {
  for (const channel of channels) channel.close();
  await smtp.close();
  rmSync(tempDir, { recursive: true, force: true });
});
afterEach(() => {
  smtp.received.length = 0;
});

function emailChannel(overrides: Partial<SmtpConfig> = {}, env: Record<string, string> = {}): EmailChannel {
  const config: SmtpConfig = {
    host: "127.0.0.1",
    port: smtp.port,
    security: "none",
    from: "Alerting <alerts@alerting.example>",
    timeoutMs: 2000,
    connectionsMax: 2,
    ...overrides,
  };
  const channel = new EmailChannel(config, env);
  channels.push(channel);
  return channel;
}

const decodeQuotedPrintable = (text: string) =>
  text
    .replace(/=\r\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(Number.parseInt(hex, 16)));

/** The Subject header, unfolded, its RFC 2047 Q-encoded words decoded. */
function subjectOf(raw: string): string {
  const folded = /\r\nSubject: (.*(?:\r\n .*)*)/.exec(raw)?.[1] ?? "";
  return folded
    .replace(/\?=\r\n =\?/g, "?==?")
    .replace(/=\?UTF-8\?Q\?(.*?)\?=/g, (_, word: string) => decodeQuotedPrintable(word.replace(/_/g, " ")));
}

/** Enough MIME for assertions: the decoded body of the part with the given content type. */
function mimePart(raw: string, contentType: string): string {
  const start = raw.indexOf(`Content-Type: ${contentType}`);
  if (start < 0) throw new Error(`no ${contentType} part`);
  const headerEnd = raw.indexOf("\r\n\r\n", start);
  const bodyEnd = raw.indexOf("\r\n----", headerEnd);
  const headers = raw.slice(start, headerEnd);
  const body = raw.slice(headerEnd + 4, bodyEnd);
  return headers.includes("quoted-printable") ? decodeQuotedPrintable(body) : body;
}

describe("email delivery", () => {
  test("one message to every recipient, with subject, text and escaped HTML", async () => {
    const alert = notification({
      severity: "HIGH",
      name: `<script>alert("x")</script> & co`,
      context: { note: "<b>bold</b> 'quoted'" },
    });
    const result = await emailChannel().deliver(
      endpoint("email", " ops@example.com, oncall@example.com ,"),
      alert,
    );

    expect(result).toMatchObject({ outcome: "SUCCESS" });
    expect(result.smtpReply).toStartWith("250");
    expect(result.smtpReply).toContain(queuedReply);
    expect(smtp.received).toHaveLength(1);
    const [mail] = smtp.received;
    if (mail === undefined) throw new Error("no mail");
    expect(mail.from).toBe("alerts@alerting.example");
    expect(mail.to).toEqual(["ops@example.com", "oncall@example.com"]);
    expect(subjectOf(mail.raw)).toBe(`[FIRING] [HIGH] <script>alert("x")</script> & co`);
    expect(mail.raw).toContain("Message-ID: <notification-4242@alerting.example>");

    const text = mimePart(mail.raw, "text/plain");
    expect(text).toContain(`Name: <script>alert("x")</script> & co`);
    expect(text).toContain("Alert ID: alert-7");
    expect(text).toContain("note: <b>bold</b> 'quoted'");

    const html = mimePart(mail.raw, "text/html");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co");
    expect(html).toContain("note: &lt;b&gt;bold&lt;/b&gt; &#39;quoted&#39;");
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<b>");
  });

  test("a group window: the count in the subject, a table of the listed alerts, the rest counted", async () => {
    const result = await emailChannel().deliverGroup(
      endpoint("email", "ops@example.com"),
      groupMessage(5, 3),
    );
    expect(result).toMatchObject({ outcome: "SUCCESS" });
    const [mail] = smtp.received;
    if (mail === undefined) throw new Error("no mail");
    expect(subjectOf(mail.raw)).toBe("[FIRING:5] source=billing-api");
    const messageId =
      /Message-ID:\s*<(group-0f1e2d3c4b5a69788796a5b4c3d2e1f0-1767225600000-2\.[0-9a-f]{16})@alerting\.example>/;
    expect(mail.raw).toMatch(messageId);
    // A retry to the same recipients names the same message; other recipients of the window, another.
    await emailChannel().deliverGroup(endpoint("email", "ops@example.com"), groupMessage(5, 3));
    await emailChannel().deliverGroup(endpoint("email", "dba@example.com"), groupMessage(2, 3));
    const ids = smtp.received.map((m) => messageId.exec(m.raw)?.[1]);
    expect(ids[1]).toBe(ids[0] as string);
    expect(ids[2]).not.toBe(ids[0] as string);
    expect(ids[2]).toBeDefined();
    const html = mimePart(mail.raw, "text/html");
    expect(html.match(/<tr>/g)).toHaveLength(4); // header and 3 listed alerts
    expect(html).toContain("disk &lt;full&gt;");
    expect(html).toContain("and 2 more");
    expect(mimePart(mail.raw, "text/plain")).toContain(
      "firing | CRITICAL | billing-api | cpu-high | alert-1",
    );
  });

  test("550 for every recipient is permanent, with the reply recorded", async () => {
    const result = await emailChannel().deliver(endpoint("email", "unknown@example.com"), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT" });
    expect(result.smtpReply).toStartWith("550");
    expect(smtp.received).toHaveLength(0);
  });

  test("451 is retryable", async () => {
    const result = await emailChannel().deliver(endpoint("email", "greylisted@example.com"), notification());
    expect(result).toMatchObject({ outcome: "RETRYABLE" });
    expect(result.smtpReply).toStartWith("451");
  });

  test("some recipients rejected: delivered to the rest, rejections noted, no retry", async () => {
    const result = await emailChannel().deliver(
      endpoint("email", "ops@example.com,unknown@example.com"),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "SUCCESS", error: "rejected recipients: unknown@example.com" });
    expect(smtp.received[0]?.to).toEqual(["ops@example.com"]);
  });

  test("no recipients is permanent", async () => {
    const result = await emailChannel().deliver(endpoint("email", " , "), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT", error: "no recipients" });
  });

  test("authenticates with a password from the environment or from a file", async () => {
    const fromEnv = emailChannel(
      { auth: { user: "alerts", password: { env: "SMTP_PASSWORD" } } },
      { SMTP_PASSWORD: "pa55word" },
    );
    expect((await fromEnv.deliver(endpoint("email", "ops@example.com"), notification())).outcome).toBe(
      "SUCCESS",
    );

    const passwordFile = join(tempDir, "smtp-password");
    writeFileSync(passwordFile, "pa55word\n");
    const fromFile = emailChannel({ auth: { user: "alerts", password: { file: passwordFile } } });
    expect((await fromFile.deliver(endpoint("email", "ops@example.com"), notification())).outcome).toBe(
      "SUCCESS",
    );
  });

  test("a wrong password is a permanent 535", async () => {
    const channel = emailChannel({ auth: { user: "alerts", password: { env: "P" } } }, { P: "wrong" });
    const result = await channel.deliver(endpoint("email", "ops@example.com"), notification());
    expect(result).toMatchObject({ outcome: "PERMANENT" });
    expect(result.smtpReply).toStartWith("535");
    expect(JSON.stringify(result)).not.toContain("wrong");
  });

  test("a missing password source is a configuration error at construction", () => {
    expect(() => emailChannel({ auth: { user: "alerts", password: { env: "ABSENT" } } })).toThrow(
      SmtpConfigError,
    );
    expect(() =>
      emailChannel({ auth: { user: "alerts", password: { file: join(tempDir, "none") } } }),
    ).toThrow(SmtpConfigError);
  });

  test("an unreachable server is retryable", async () => {
    const closed = await startSmtpSink();
    await closed.close();
    const result = await emailChannel({ port: closed.port }).deliver(
      endpoint("email", "ops@example.com"),
      notification(),
    );
    expect(result).toMatchObject({ outcome: "RETRYABLE" });
    expect(result.error).toContain("ECONNREFUSED");
  });
});
