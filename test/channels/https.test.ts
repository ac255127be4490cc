// https to a pinned address: the connection goes to the checked address while SNI and certificate
// verification use the URL's host name. The certificate is made here, self-signed for hook.test, and
// trusted by the client (a child process, see https-client.ts) through NODE_EXTRA_CA_CERTS.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DeliveryResult } from "../../src/channels/types.ts";
import { HttpSink } from "./sink.ts";

const dir = mkdtempSync(join(tmpdir(), "alerting-https-"));
const [certFile, keyFile] = [join(dir, "cert.pem"), join(dir, "key.pem")];
const opensslArgs =
  "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=hook.test";
const openssl = Bun.spawnSync([
  "openssl",
  ...opensslArgs.split(" "),
  ...["-addext", "subjectAltName=DNS:hook.test", "-keyout", keyFile, "-out", certFile],
]);
if (!openssl.success) throw new Error(`openssl failed: ${openssl.stderr}`);

const sink = new HttpSink(undefined, { cert: Bun.file(certFile), key: Bun.file(keyFile) });
afterAll(async () => {
  await sink.stop();
  rmSync(dir, { recursive: true });
});

test("https goes to the checked address and verifies the certificate against the URL's host name", async () => {
  const client = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, "https-client.ts"),
      sink.url("/hook", "hook.test"),
      sink.url("/hook", "evil.test"),
    ],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: certFile }, stderr: "inherit" },
  );
  const [named, misnamed] = (await new Response(client.stdout).json()) as DeliveryResult[];

  expect(named).toMatchObject({ outcome: "SUCCESS", httpStatus: 200 });
  expect(misnamed).toMatchObject({
    outcome: "RETRYABLE",
    error: expect.stringContaining("ERR_TLS_CERT_ALTNAME_INVALID"),
  });
  expect(sink.received.map((request) => request.headers.get("host"))).toEqual([
    `hook.test:${new URL(sink.url()).port}`,
  ]);
});
