/**
 * Email over SMTP with nodemailer (pooled connections). One endpoint value may list several
 * comma-separated recipients; they get one message. The SMTP reply is kept for the deliveries row.
 *
 * Outcomes: the server's reply code decides (4yz RETRYABLE, 5yz PERMANENT); connection problems and
 * timeouts are RETRYABLE. When the server accepts some recipients and rejects others the result is
 * SUCCESS with the rejections in `error`: a retry would send the accepted recipients a duplicate.
 * The Message-ID is derived from the notification id, so a retry after an ambiguous timeout carries
 * the same id and mail systems that dedupe on it show one message.
 */
import { readFileSync } from "node:fs";
import { createTransport } from "nodemailer";
import {
  emailBodyBytesMax,
  type GroupMessage,
  groupHeadline,
  groupMessageKey,
  groupTableHeader,
  groupTableRow,
  groupView,
  summaryListing,
  utf8Bytes,
} from "../core/group-payload.ts";
import { classifyNetworkError, classifySmtpReply } from "../core/retry.ts";
import {
  assertEndpointType,
  type Channel,
  contextLines,
  type DeliveryResult,
  type Endpoint,
  type Notification,
  notificationStatus,
  toDeliveryResult,
} from "./types.ts";

/** Where the SMTP password lives; it is never part of the configuration itself. */
export type SecretSource = { env: string } | { file: string };

/** The closed list of SMTP_SECURITY values; see SmtpConfig.security. */
export const smtpSecurityModes = ["tls", "starttls", "none"] as const;
export type SmtpSecurity = (typeof smtpSecurityModes)[number];

export interface SmtpConfig {
  host: string;
  port: number;
  /**
   * "tls": TLS from the first byte (port 465). "starttls": plain connect, then STARTTLS, refused if
   * the server does not offer it (port 587). "none": plaintext, only for a relay on the same host.
   */
  security: SmtpSecurity;
  auth?: { user: string; password: SecretSource };
  /** Envelope and From: address; its domain also names Message-IDs. */
  from: string;
  timeoutMs: number;
  connectionsMax: number;
}

export class SmtpConfigError extends Error {
  override readonly name = "SmtpConfigError";
}

export class EmailChannel implements Channel {
  readonly type = "email";
  private readonly transport;
  private readonly messageIdDomain: string;

  constructor(
    private readonly config: SmtpConfig,
    env: Record<string, string | undefined> = process.env,
  ) {
    this.messageIdDomain = config.from.split("@").pop()?.replace(/>$/, "") || "alerting.invalid";
    this.transport = createTransport({
      pool: true,
      maxConnections: config.connectionsMax,
      host: config.host,
      port: config.port,
      secure: config.security === "tls",
      requireTLS: config.security === "starttls",
      ignoreTLS: config.security === "none",
      auth: config.auth && { user: config.auth.user, pass: readSecret(config.auth.password, env) },
      connectionTimeout: config.timeoutMs,
      greetingTimeout: config.timeoutMs,
      socketTimeout: config.timeoutMs,
      // Message content is ours, never a path or URL to fetch; close those doors anyway.
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  deliver(endpoint: Endpoint, notification: Notification): Promise<DeliveryResult> {
    assertEndpointType(endpoint, "email");
    return this.#send(endpoint, `notification-${notification.id}`, renderEmail(notification));
  }

  deliverGroup(endpoint: Endpoint, message: GroupMessage): Promise<DeliveryResult> {
    assertEndpointType(endpoint, "email");
    // Each endpoint of a window gets its own rules' alerts: a Message-ID names one content, so it
    // takes the recipients too, and stays the same on every retry to them.
    const recipientsTag = new Bun.CryptoHasher("sha256").update(endpoint.value).digest("hex").slice(0, 16);
    return this.#send(endpoint, `${groupMessageKey(message)}.${recipientsTag}`, renderGroupEmail(message));
  }

  /** `messageKey` names the Message-ID: the same on every retry of one notification or group window. */
  async #send(
    endpoint: Endpoint,
    messageKey: string,
    content: { subject: string; text: string; html: string },
  ): Promise<DeliveryResult> {
    const startedMs = performance.now();
    const elapsedMs = () => Math.round(performance.now() - startedMs);
    const recipients = endpoint.value
      .split(",")
      .map((address) => address.trim())
      .filter((address) => address !== "");
    if (recipients.length === 0) {
      return toDeliveryResult({ outcome: "PERMANENT", reason: "no recipients" }, elapsedMs());
    }
    const signal = AbortSignal.timeout(this.config.timeoutMs);
    try {
      const info = await this.transport.sendMail({
        from: this.config.from,
        to: recipients,
        messageId: `<${messageKey}@${this.messageIdDomain}>`,
        ...content,
        signal,
      });
      const reply = info.response;
      const rejected = info.rejected.map(String);
      const error = rejected.length > 0 ? `rejected recipients: ${rejected.join(", ")}` : undefined;
      const details = error === undefined ? { smtpReply: reply } : { smtpReply: reply, error };
      return toDeliveryResult({ outcome: "SUCCESS", reason: reply }, elapsedMs(), details);
    } catch (error) {
      const { responseCode, response } = error as { responseCode?: unknown; response?: unknown };
      if (typeof responseCode === "number" && typeof response === "string") {
        return toDeliveryResult(classifySmtpReply(responseCode, response), elapsedMs(), {
          smtpReply: response,
        });
      }
      // nodemailer reports our own abort as EABORT; the signal's reason says it was the timeout.
      return toDeliveryResult(classifyNetworkError(signal.aborted ? signal.reason : error), elapsedMs());
    }
  }

  /** Closes pooled SMTP connections; in-flight sends finish first. */
  close(): void {
    this.transport.close();
  }
}

/** A trailing newline in a secrets file is an editor artefact, not part of the password. */
function readSecret(source: SecretSource, env: Record<string, string | undefined>): string {
  if ("env" in source) {
    const value = env[source.env];
    if (value === undefined || value === "")
      throw new SmtpConfigError(`SMTP password env ${source.env} is not set`);
    return value;
  }
  try {
    return readFileSync(source.file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new SmtpConfigError(`SMTP password file ${source.file} unreadable: ${(error as Error).message}`);
  }
}

export function renderEmail(notification: Notification): { subject: string; text: string; html: string } {
  const { id, severity, source, name, alertId, eventTime } = notification;
  const facts: Array<[string, string]> = [
    ["Status", notification.kind ?? "firing"],
    ["Severity", severity],
    ["Source", source],
    ["Name", name],
    ["Alert ID", alertId],
    ["Event time", eventTime.toISOString()],
    ["Notification", id],
  ];
  const context = contextLines(notification.context);
  const text = [
    ...facts.map(([label, value]) => `${label}: ${value}`),
    ...(context.length > 0 ? ["", "Context:", ...context.map((line) => `  ${line}`)] : []),
  ].join("\n");
  const row = (label: string, value: string) =>
    `<tr><th align="left">${label}</th><td>${escapeHtml(value)}</td></tr>`;
  const html = [
    `<h2>[${escapeHtml(severity)}] ${escapeHtml(name)}</h2>`,
    `<table>${facts.map(([label, value]) => row(label, value)).join("")}</table>`,
    ...(context.length > 0
      ? [`<h3>Context</h3><ul>${context.map((line) => `<li>${escapeHtml(line)}</li>`).join("")}</ul>`]
      : []),
  ].join("\n");
  // Line breaks in a header would let alert text forge headers; nodemailer encodes, we flatten too.
  const status = notificationStatus(notification).toUpperCase();
  const subject = `[${status}] [${severity}] ${name}`.replace(/[\r\n]+/g, " ");
  return { subject, text, html };
}

/**
 * Subject: status, alert count and group labels; body: a table of the listed alerts and the count of
 * the rest, at most emailBodyBytesMax of text and HTML together.
 */
export function renderGroupEmail(message: GroupMessage): { subject: string; text: string; html: string } {
  const view = groupView(message);
  const subject = groupHeadline(view);
  const textRow = (row: string[]) => row.join(" | ");
  const htmlRow = (row: string[], tag: string) =>
    `<tr>${row.map((cell) => `<${tag} align="left">${escapeHtml(cell)}</${tag}>`).join("")}</tr>`;
  const moreLine = (more: number) => `and ${more} more`;
  const moreHtml = (more: number) => `<p>${escapeHtml(moreLine(more))}</p>`;
  const render = (rows: string[][], more: number) => {
    const text = [
      subject,
      "",
      ...[groupTableHeader, ...rows].map(textRow),
      ...(more > 0 ? [moreLine(more)] : []),
    ];
    const html = [
      `<h2>${escapeHtml(subject)}</h2>`,
      `<table>${htmlRow(groupTableHeader, "th")}${rows.map((row) => htmlRow(row, "td")).join("")}</table>`,
      ...(more > 0 ? [moreHtml(more)] : []),
    ];
    return { subject, text: text.join("\n"), html: html.join("\n") };
  };
  const empty = render([], 0);
  // A row adds a line to the text and a <tr> to the table; the count adds a line to each.
  const { listed, more } = summaryListing(
    view.alerts,
    message.alertsMax,
    emailBodyBytesMax - utf8Bytes(empty.text) - utf8Bytes(empty.html),
    (alert) => {
      const row = groupTableRow(alert);
      return utf8Bytes(textRow(row)) + 1 + utf8Bytes(htmlRow(row, "td"));
    },
    (count) => utf8Bytes(moreLine(count)) + utf8Bytes(moreHtml(count)) + 2,
  );
  return render(listed.map(groupTableRow), more);
}

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}
