// Decisions only: nothing here opens a connection, and DNS is replaced by a fixed table.
import { describe, expect, test } from "bun:test";
import { allowListFromEnv, forbiddenRangeOf, SsrfGuard } from "./ssrf.ts";

describe("forbiddenRangeOf", () => {
  test.each([
    ["0.0.0.0", "this-network"],
    ["0.1.2.3", "this-network"],
    ["10.0.0.1", "private"],
    ["10.255.255.255", "private"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["100.127.255.255", "carrier-grade NAT"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["169.254.169.254", "link-local (incl. cloud metadata)"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["255.255.255.255", "reserved/broadcast"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf:ffff::1", "link-local"],
    ["ff02::1", "multicast"],
    ["::127.0.0.1", "IPv4-compatible"],
    ["::a9fe:a9fe", "IPv4-compatible"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "link-local (incl. cloud metadata)"],
    ["::ffff:10.0.0.1", "private"],
    ["64:ff9b::10.0.0.1", "private"],
    ["64:ff9b::a9fe:a9fe", "link-local (incl. cloud metadata)"],
  ])("%s is refused as %s", (address, range) => {
    expect(forbiddenRangeOf(address)).toBe(range);
  });

  test.each([
    "1.1.1.1",
    "8.8.8.8",
    "11.0.0.1",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "223.255.255.255",
    "2001:4860:4860::8888",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
  ])("%s is public", (address) => {
    expect(forbiddenRangeOf(address)).toBeUndefined();
  });

  test("a host name is not an address", () => {
    expect(forbiddenRangeOf("example.com")).toBe("not an IP address");
  });
});

describe("SsrfGuard", () => {
  const dns: Record<string, string[]> = {
    "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
    "mixed.example": ["93.184.216.34", "10.0.0.7"],
    "internal.example": ["10.0.0.7"],
    "empty.example": [],
  };
  const fakeLookup = async (host: string) => dns[host] ?? [host];

  test("refuses internal addresses unless allow-listed by CIDR", () => {
    const guard = new SsrfGuard({ cidrs: ["127.0.0.1", "10.0.0.0/24"] });
    expect(guard.decide("127.0.0.1", ["127.0.0.1"]).allowed).toBe(true);
    expect(guard.decide("10.0.0.200", ["10.0.0.200"]).allowed).toBe(true);
    expect(guard.decide("127.0.0.2", ["127.0.0.2"])).toEqual({
      allowed: false,
      reason: "SSRF guard: 127.0.0.2 is in a refused range (loopback)",
    });
    expect(guard.decide("::1", ["::1"]).allowed).toBe(false);
  });

  test("an allow-listed IPv4 CIDR also admits its IPv4-mapped IPv6 form", () => {
    const guard = new SsrfGuard({ cidrs: ["127.0.0.1/32"] });
    expect(guard.decide("x", ["::ffff:127.0.0.1"]).allowed).toBe(true);
  });

  test("an allow-listed host name admits whatever it resolves to", () => {
    const guard = new SsrfGuard({ hosts: ["Internal.Example."] });
    expect(guard.decide("internal.example", ["10.0.0.7"]).allowed).toBe(true);
    expect(guard.decide("other.example", ["10.0.0.7"]).allowed).toBe(false);
  });

  test("every resolved address must pass", async () => {
    const guard = new SsrfGuard({}, fakeLookup);
    expect(await guard.check(new URL("https://public.example/hook"))).toEqual({
      allowed: true,
      addresses: ["93.184.216.34", "2606:2800:220:1::1"],
    });
    expect(await guard.check(new URL("https://mixed.example/hook"))).toMatchObject({ allowed: false });
    expect(await guard.check(new URL("http://[::1]:8080/"))).toMatchObject({ allowed: false });
    expect(await guard.check(new URL("http://169.254.169.254/latest/meta-data/"))).toMatchObject({
      allowed: false,
      reason: expect.stringContaining("cloud metadata"),
    });
  });

  test("only http and https", async () => {
    const guard = new SsrfGuard({}, fakeLookup);
    expect(await guard.check(new URL("ftp://public.example/"))).toEqual({
      allowed: false,
      reason: "scheme ftp: not allowed",
    });
  });

  test("a name without addresses is a DNS failure, not a decision", async () => {
    const guard = new SsrfGuard({}, fakeLookup);
    await expect(guard.check(new URL("https://empty.example/"))).rejects.toMatchObject({ code: "ENOTFOUND" });
  });

  test("a verdict is reused for 5 s per scheme and host, then the host is resolved and checked again", async () => {
    let answer = "93.184.216.34";
    let lookups = 0;
    let nowMs = 0;
    const guard = new SsrfGuard(
      {},
      async () => {
        lookups++;
        return [answer];
      },
      () => nowMs,
    );
    const url = new URL("https://rebinding.example/hook");
    expect(guard.recentVerdict(url)).toBeUndefined();
    expect(await guard.check(url)).toEqual({ allowed: true, addresses: ["93.184.216.34"] });
    answer = "127.0.0.1";
    nowMs = 4999;
    // The cached verdict names the address it checked: a request using it connects there, not to 127.0.0.1.
    expect(guard.recentVerdict(url)).toEqual({ allowed: true, addresses: ["93.184.216.34"] });
    expect(guard.recentVerdict(new URL("http://rebinding.example/hook"))).toBeUndefined();
    nowMs = 5000;
    expect(guard.recentVerdict(url)).toBeUndefined();
    expect(await guard.check(url)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining("loopback"),
    });
    expect(lookups).toBe(2);
  });

  test("a malformed allow-list is a configuration error", () => {
    for (const cidr of ["10.0.0.0/33", "10.0.0.0/x", "nonsense/8", "::/129"]) {
      expect(() => new SsrfGuard({ cidrs: [cidr] })).toThrow(RangeError);
    }
  });
});

describe("SsrfGuard.decideWithoutLookup: what the rule service refuses when an endpoint is saved", () => {
  const noDns = async (host: string): Promise<string[]> => {
    throw new Error(`no DNS expected, asked for ${host}`);
  };
  const guard = new SsrfGuard({}, noDns);
  const refusal = (url: string) => {
    const verdict = guard.decideWithoutLookup(new URL(url));
    return verdict?.allowed === false ? verdict.reason : verdict;
  };

  // The URL parser turns every IPv4 spelling into a dotted quad before the guard sees it.
  test.each([
    ["http://10.0.0.1:8080/hook", "10.0.0.1", "private"],
    ["http://172.16.5.4/", "172.16.5.4", "private"],
    ["http://192.168.0.10/", "192.168.0.10", "private"],
    ["http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"],
    ["http://127.0.0.1:8090/hook", "127.0.0.1", "loopback"],
    ["http://127.1/", "127.0.0.1", "loopback"],
    ["http://2130706433/", "127.0.0.1", "loopback"],
    ["http://0x7f.0.0.1/", "127.0.0.1", "loopback"],
    ["http://0177.0.0.01/", "127.0.0.1", "loopback"],
    ["http://0x7f000001/", "127.0.0.1", "loopback"],
    ["http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local (incl. cloud metadata)"],
    ["http://0251.0376.0251.0376/", "169.254.169.254", "link-local (incl. cloud metadata)"],
    ["http://0.0.0.0/", "0.0.0.0", "this-network"],
    ["http://0/", "0.0.0.0", "this-network"],
    ["http://224.0.0.1/", "224.0.0.1", "multicast"],
    ["http://255.255.255.255/", "255.255.255.255", "reserved/broadcast"],
    ["http://[::1]:8080/", "::1", "loopback"],
    ["http://[::]/", "::", "unspecified"],
    ["http://[fd00::1]/", "fd00::1", "unique-local"],
    ["http://[fc00::5]/", "fc00::5", "unique-local"],
    ["http://[fe80::1]/", "fe80::1", "link-local"],
    ["http://[ff02::1]/", "ff02::1", "multicast"],
    ["http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", "loopback"],
    ["http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe", "link-local (incl. cloud metadata)"],
    ["http://[::ffff:10.1.2.3]/", "::ffff:a01:203", "private"],
    ["http://[64:ff9b::10.0.0.1]/", "64:ff9b::a00:1", "private"],
    ["http://[::127.0.0.1]/", "::7f00:1", "IPv4-compatible"],
    ["https://user:pass@10.0.0.1/", "10.0.0.1", "private"],
  ])("%s is refused (%s, %s)", (url, address, range) => {
    expect(refusal(url)).toBe(`SSRF guard: ${address} is in a refused range (${range})`);
  });

  test.each([
    ["http://localhost:8080/", "localhost"],
    ["http://LOCALHOST./", "localhost"],
    ["http://hooks.localhost/", "hooks.localhost"],
  ])("%s is loopback by definition", (url, host) => {
    expect(refusal(url)).toBe(`SSRF guard: ${host} resolves to 127.0.0.1 (loopback)`);
  });

  test("a scheme other than http(s) is refused", () => {
    expect(refusal("ftp://example.com/")).toBe("scheme ftp: not allowed");
  });

  test("public literals pass; names are left to delivery's lookup", () => {
    expect(guard.decideWithoutLookup(new URL("https://8.8.8.8/hook"))).toEqual({
      allowed: true,
      addresses: ["8.8.8.8"],
    });
    expect(guard.decideWithoutLookup(new URL("https://[2606:4700::1111]/"))).toMatchObject({ allowed: true });
    expect(guard.decideWithoutLookup(new URL("https://hooks.slack.com/services/T/B/X"))).toBeUndefined();
    expect(guard.decideWithoutLookup(new URL("http://127.0.0.1.nip.io/"))).toBeUndefined();
  });

  test("the allow-list re-admits literals and localhost as it does at delivery", () => {
    const sinks = new SsrfGuard({ cidrs: ["127.0.0.1/32"], hosts: ["internal.example"] }, noDns);
    expect(sinks.decideWithoutLookup(new URL("http://127.0.0.1:8090/hook"))).toMatchObject({ allowed: true });
    expect(sinks.decideWithoutLookup(new URL("http://[::ffff:127.0.0.1]/"))).toMatchObject({ allowed: true });
    expect(sinks.decideWithoutLookup(new URL("http://127.0.0.2/"))).toMatchObject({ allowed: false });
    expect(sinks.decideWithoutLookup(new URL("http://10.0.0.1/"))).toMatchObject({ allowed: false });
    // localhost may also be ::1, which 127.0.0.1/32 does not cover: refused, as delivery would.
    expect(sinks.decideWithoutLookup(new URL("http://localhost/"))).toMatchObject({ allowed: false });
    const byName = new SsrfGuard({ hosts: ["localhost"] }, noDns);
    expect(byName.decideWithoutLookup(new URL("http://localhost:8090/"))).toMatchObject({ allowed: true });
  });
});

describe("allowListFromEnv", () => {
  test("reads comma-separated SSRF_ALLOW_CIDRS and SSRF_ALLOW_HOSTS, ignoring blanks", () => {
    expect(
      allowListFromEnv({ SSRF_ALLOW_CIDRS: " 127.0.0.1/32, ,10.0.0.0/8", SSRF_ALLOW_HOSTS: "a.example," }),
    ).toEqual({ cidrs: ["127.0.0.1/32", "10.0.0.0/8"], hosts: ["a.example"] });
    expect(allowListFromEnv({})).toEqual({ cidrs: [], hosts: [] });
  });
});
