// Child process of https.test.ts: posts to each URL given through the transport and prints the results
// as JSON. A process of its own because Bun reads NODE_EXTRA_CA_CERTS (the test's certificate) only at
// start-up.
import { HttpTransport } from "../../src/channels/http.ts";
import { SsrfGuard } from "../../src/channels/ssrf.ts";

// Every name resolves to the sink's address, which the allow-list admits.
const guard = new SsrfGuard({ cidrs: ["127.0.0.1/32"] }, async () => ["127.0.0.1"]);
const http = new HttpTransport({ guard, timeoutMs: 2000, redirectsMax: 0 });
const results = [];
for (const url of process.argv.slice(2)) {
  results.push(await http.post(url, "{}", { "content-type": "application/json" }));
}
console.log(JSON.stringify(results));
