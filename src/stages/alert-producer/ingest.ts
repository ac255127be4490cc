/**
 * The HTTP ingest endpoints. Every request carries an ingest credential (`Authorization: Bearer ik_...`,
 * or HTTP basic auth with the secret as password, as Prometheus's alertmanagers config sends it), looked
 * up on every request; every alert written carries the credential's scope, which decides whose rules may
 * match it. "Accepted" means written to Kafka and acknowledged: the 200 is sent only after the producer's
 * send resolved, and a request is all or nothing as far as validation goes (one bad alert rejects the
 * request before anything is written).
 *
 *   200 {accepted, alert_ids}       every alert acknowledged by the broker
 *   400 {error: {code, message, fields: {"[3].severity": reason}}}   bad JSON or bad fields
 *   401 no credential, or an unknown, revoked or expired one (nothing is read or written)
 *   405 not POST; 413 body over the limit or more than 10,000 alerts; 415 not application/json
 *   429 too many requests from this address or with this credential (a batch is one request), with
 *       Retry-After in seconds
 *   503 Kafka did not acknowledge (the client should retry: ids are stable where the input is), the
 *       credential could not be checked, or the process is shutting down
 */
import { Counter } from "prom-client";
import type { VerifiedIngestCredential } from "../../adapters/ingest-credentials.ts";
import { RequestRateLimiter, type TokenRate } from "../../core/rate-limit.ts";
import type { ProduceRecord } from "../../kafka/index.ts";
import { HttpError, type Peer, rateLimited, readJsonBody } from "../../runtime/http.ts";
import type { Logger } from "../../runtime/log.ts";
import type { StageMetrics } from "../../runtime/metrics.ts";
import { mapAlertmanagerAlerts } from "./alertmanager.ts";
import { type Alert, alertRecord, effectiveAlertId } from "./alerts.ts";
import { parseV1Alerts } from "./ingest-v1.ts";
import { type FieldErrors, limits } from "./validate.ts";

export const alertsPerRequestMax = 10_000;

export interface IngestOptions {
  /** Resolves once the broker acknowledged every record (Producer.send). */
  send(records: ProduceRecord[]): Promise<void>;
  /** The credential an Authorization header carries, or undefined (401): verifyIngestCredential. */
  authenticate(authorization: string | null): Promise<VerifiedIngestCredential | undefined>;
  topic: string;
  bodyLimitBytes: number;
  /** Per remote address (before authentication), and per credential. */
  requestRate: TokenRate;
  /** Alertmanager label used as the alert's source (INGEST_SOURCE_LABEL). */
  sourceLabel: string;
  logger: Logger;
  metrics: StageMetrics;
  clockMs?: () => number;
}

export interface Ingest {
  routes: Record<string, (request: Request, server: Peer) => Promise<Response>>;
  /** Refuses new requests (503) and waits up to `timeoutMs` for those in progress to finish. */
  drain(timeoutMs: number): Promise<void>;
}

type Api = "v1" | "v2";

export function createIngest(options: IngestOptions): Ingest {
  const clockMs = options.clockMs ?? Date.now;
  const requests = new Counter({
    name: "ingest_requests_total",
    help: "Ingest HTTP requests by API and response status",
    labelNames: ["api", "status"],
    registers: [options.metrics.registry],
  });
  const limiter = new RequestRateLimiter(options.requestRate);
  let inProgress = 0;
  let draining = false;

  async function accept(api: Api, request: Request, peer: Peer): Promise<Response> {
    // Charged before anything else, so refusing a flood costs no credential lookup and no parsing.
    const admission = limiter.tryTake(`address:${peer.requestIP(request)?.address ?? "unknown"}`);
    if (!admission.allowed) throw rateLimited(admission.retryAfterMs);
    if (request.method !== "POST")
      throw new HttpError(405, "method_not_allowed", "use POST", { headers: { allow: "POST" } });
    if (draining) throw new HttpError(503, "shutting_down", "the service is shutting down, retry");
    const caller = await authenticate(request);
    // Per credential too: one credential used from many addresses still gets one rate.
    const callerAdmission = limiter.tryTake(`credential:${caller.credentialId}`);
    if (!callerAdmission.allowed) throw rateLimited(callerAdmission.retryAfterMs);
    const body = await readJsonBody(request, options.bodyLimitBytes);
    if (Array.isArray(body) && body.length > alertsPerRequestMax)
      throw new HttpError(413, "too_many_alerts", `at most ${alertsPerRequestMax} alerts per request`);
    const nowMs = clockMs();
    const { alerts, errors } =
      api === "v1"
        ? parseV1Alerts(body, nowMs)
        : mapAlertmanagerAlerts(body, { sourceLabel: options.sourceLabel, nowMs });
    const { records, alertIds } = encode(alerts, caller.scope, options.topic, Array.isArray(body), errors);
    if (errors.count > 0) {
      throw new HttpError(400, "invalid_alerts", `${errors.count} invalid field(s)`, {
        fields: errors.toJSON(),
      });
    }
    try {
      await options.send(records);
    } catch (error) {
      options.logger.warn("kafka did not acknowledge alerts", { error, count: records.length });
      throw new HttpError(503, "kafka_unavailable", "the alerts could not be written to Kafka, retry");
    }
    options.metrics.produced.inc({ topic: options.topic }, records.length);
    return Response.json({ accepted: records.length, alert_ids: alertIds });
  }

  async function authenticate(request: Request): Promise<VerifiedIngestCredential> {
    let caller: VerifiedIngestCredential | undefined;
    try {
      caller = await options.authenticate(request.headers.get("authorization"));
    } catch (error) {
      options.logger.warn("could not check an ingest credential", { error });
      throw new HttpError(503, "credentials_unavailable", "the credential could not be checked, retry");
    }
    if (caller === undefined) {
      throw new HttpError(
        401,
        "unauthorized",
        "an ingest credential is required: Authorization: Bearer ik_...",
        {
          headers: { "www-authenticate": 'Bearer realm="ingest", Basic realm="ingest"' },
        },
      );
    }
    return caller;
  }

  function route(api: Api) {
    return async (request: Request, server: Peer): Promise<Response> => {
      inProgress++;
      let response: Response;
      try {
        response = await accept(api, request, server);
      } catch (error) {
        response = errorResponse(error, options.logger);
      } finally {
        inProgress--;
      }
      requests.inc({ api, status: response.status });
      return response;
    };
  }

  return {
    routes: { "/api/v1/alerts": route("v1"), "/api/v2/alerts": route("v2") },
    async drain(timeoutMs) {
      draining = true;
      const deadlineMs = performance.now() + timeoutMs;
      while (inProgress > 0 && performance.now() < deadlineMs) await Bun.sleep(10);
    },
  };
}

/** Encodes valid alerts in `scope`, adding an error for any too large to be a Kafka record. */
function encode(
  alerts: readonly Alert[],
  scope: string,
  topic: string,
  batch: boolean,
  errors: FieldErrors,
): { records: ProduceRecord[]; alertIds: string[] } {
  const records: ProduceRecord[] = [];
  const alertIds: string[] = [];
  if (errors.count > 0) return { records, alertIds };
  alerts.forEach((alert, index) => {
    const alertId = effectiveAlertId(alert);
    const record = alertRecord({ ...alert, scope }, topic, alertId);
    if ((record.value?.byteLength ?? 0) > limits.alertBytesMax)
      errors.add(batch ? `[${index}]` : "body", `larger than ${limits.alertBytesMax} bytes once encoded`);
    records.push(record);
    alertIds.push(alertId);
  });
  return { records, alertIds };
}

function errorResponse(error: unknown, logger: Logger): Response {
  if (!(error instanceof HttpError)) {
    logger.error("ingest request failed", { error });
    return Response.json({ error: { code: "internal", message: "internal error" } }, { status: 500 });
  }
  const { status, code, message, fields, headers } = error;
  return Response.json({ error: { code, message, fields } }, { status, headers });
}
