/**
 * SSRF guard: tenants choose webhook and Slack URLs, so before every request (and again on every
 * redirect hop) the host is resolved and refused if any of its addresses is internal: private,
 * loopback, link-local (cloud metadata at 169.254.169.254), unique-local, CGNAT, multicast, reserved,
 * or an IPv4-mapped / NAT64 form of those. An operator allow-list (CIDRs and host names) re-admits
 * specific internal targets.
 *
 * A verdict holds for the addresses it lists, not for the name: the transport (http.ts) connects to
 * those addresses only, so a DNS answer that changes after the check (rebinding) is never used.
 */
import { lookup } from "node:dns/promises";
import { isIP, isIPv4, isIPv6 } from "node:net";

export interface AllowList {
  /** e.g. "10.1.2.0/24", "127.0.0.1" (a bare address means that address only), "fd00::/8". */
  cidrs?: string[];
  /** Exact host names, case-insensitive; every address they resolve to is allowed. */
  hosts?: string[];
}

export type GuardVerdict = { allowed: true; addresses: string[] } | { allowed: false; reason: string };

/**
 * The operator's allow-list from SSRF_ALLOW_CIDRS and SSRF_ALLOW_HOSTS (comma-separated): the sender
 * applies it at delivery and the rule service when an endpoint is saved, so both judge alike.
 */
export function allowListFromEnv(env: Record<string, string | undefined> = process.env): AllowList {
  const list = (name: string) =>
    (env[name] ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  return { cidrs: list("SSRF_ALLOW_CIDRS"), hosts: list("SSRF_ALLOW_HOSTS") };
}

/** Resolves a host to all its addresses; injected so tests can decide without real DNS. */
export type LookupAll = (hostname: string) => Promise<string[]>;

const lookupAll: LookupAll = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

/** Addresses are compared as 16 bytes; IPv4 becomes IPv4-mapped (::ffff:a.b.c.d) so mapped forms match too. */
type Address = Uint8Array;
interface Cidr {
  bytes: Address;
  prefixBits: number;
}

const forbiddenRanges: Array<[name: string, cidr: Cidr]> = [
  ["this-network", "0.0.0.0/8"],
  ["private", "10.0.0.0/8"],
  ["carrier-grade NAT", "100.64.0.0/10"],
  ["loopback", "127.0.0.0/8"],
  ["link-local (incl. cloud metadata)", "169.254.0.0/16"],
  ["private", "172.16.0.0/12"],
  ["IETF protocol assignments", "192.0.0.0/24"],
  ["private", "192.168.0.0/16"],
  ["benchmarking", "198.18.0.0/15"],
  ["multicast", "224.0.0.0/4"],
  ["reserved/broadcast", "240.0.0.0/4"],
  ["unspecified", "::/128"],
  ["loopback", "::1/128"],
  // Deprecated IPv4-compatible addresses (::a.b.c.d): nothing public lives there.
  ["IPv4-compatible", "::/96"],
  ["unique-local", "fc00::/7"],
  ["link-local", "fe80::/10"],
  ["multicast", "ff00::/8"],
].map(([name, cidr]) => [name as string, parseCidr(cidr as string)]);

/** NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits; that address is what gets reached. */
const nat64Prefix = parseCidr("64:ff9b::/96");

/** The forbidden range `address` falls in, or undefined for a public address. Pure. */
export function forbiddenRangeOf(address: string): string | undefined {
  const bytes = parseAddress(address);
  if (bytes === undefined) return "not an IP address";
  const reached = contains(nat64Prefix, bytes) ? ipv4Mapped(bytes.subarray(12)) : bytes;
  return forbiddenRanges.find(([, cidr]) => contains(cidr, reached))?.[0];
}

/** A verdict depends on the scheme (only http and https pass) and the host, nothing else. */
const verdictKey = (url: URL) => `${url.protocol}//${url.hostname}`;

/** How long a host's verdict is reused, and for how many hosts at most. */
const verdictTtlMs = 5000;
const verdictsCachedMax = 4096;

export class SsrfGuard {
  private readonly allowedCidrs: Cidr[];
  private readonly allowedHosts: Set<string>;
  /**
   * Recent verdicts by host: a sender posts to the same few hosts thousands of times a second.
   * Reusing one for a few seconds is safe because requests connect to the addresses it lists.
   */
  private readonly verdicts = new Map<string, { verdict: GuardVerdict; expiresAtMs: number }>();

  constructor(
    allowList: AllowList = {},
    private readonly lookupAddresses: LookupAll = lookupAll,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.allowedCidrs = (allowList.cidrs ?? []).map(parseCidr);
    this.allowedHosts = new Set((allowList.hosts ?? []).map(normalizeHost));
  }

  /** A verdict for the URL's host decided within the last few seconds, if any. */
  recentVerdict(url: URL): GuardVerdict | undefined {
    const key = verdictKey(url);
    const cached = this.verdicts.get(key);
    if (cached === undefined) return undefined;
    if (cached.expiresAtMs > this.nowMs()) return cached.verdict;
    this.verdicts.delete(key);
    return undefined;
  }

  /**
   * Resolves the URL's host and decides; an allowed request must connect to the returned addresses
   * only. DNS failures are thrown (the caller retries them) and not remembered.
   */
  async check(url: URL): Promise<GuardVerdict> {
    const refusedScheme = schemeVerdict(url);
    if (refusedScheme) return refusedScheme;
    const hostname = normalizeHost(url.hostname);
    const addresses = await this.lookupAddresses(hostname);
    if (addresses.length === 0) {
      throw Object.assign(new Error(`no addresses for ${hostname}`), { code: "ENOTFOUND" });
    }
    const verdict = this.decide(hostname, addresses);
    if (this.verdicts.size >= verdictsCachedMax) this.verdicts.clear();
    this.verdicts.set(verdictKey(url), {
      verdict,
      expiresAtMs: this.nowMs() + verdictTtlMs,
    });
    return verdict;
  }

  /**
   * What the URL alone decides, without DNS: its scheme, a host that is an IP address (the URL parser
   * has already turned decimal, octal and hex IPv4 forms into dotted quads), and `localhost` names
   * (RFC 6761: always loopback). Undefined for any other name, which only a lookup can judge. The
   * rule service asks this when an endpoint is saved; delivery still runs `check` on every hop.
   */
  decideWithoutLookup(url: URL): GuardVerdict | undefined {
    const refusedScheme = schemeVerdict(url);
    if (refusedScheme) return refusedScheme;
    const hostname = normalizeHost(url.hostname);
    if (isIP(hostname) !== 0) return this.decide(hostname, [hostname]);
    if (hostname === "localhost" || hostname.endsWith(".localhost")) {
      return this.decide(hostname, localhostAddresses);
    }
    return undefined;
  }

  /** The decision for already-resolved addresses: every one must be public or allow-listed. Pure. */
  decide(hostname: string, addresses: string[]): GuardVerdict {
    if (this.allowedHosts.has(normalizeHost(hostname))) return { allowed: true, addresses };
    for (const address of addresses) {
      const range = forbiddenRangeOf(address);
      if (range === undefined) continue;
      const bytes = parseAddress(address);
      if (bytes !== undefined && this.allowedCidrs.some((cidr) => contains(cidr, bytes))) continue;
      const what = hostname === address ? "is in a refused range" : `resolves to ${address}`;
      return { allowed: false, reason: `SSRF guard: ${hostname} ${what} (${range})` };
    }
    return { allowed: true, addresses };
  }
}

const localhostAddresses = ["127.0.0.1", "::1"];

function schemeVerdict(url: URL): GuardVerdict | undefined {
  if (url.protocol === "http:" || url.protocol === "https:") return undefined;
  return { allowed: false, reason: `scheme ${url.protocol} not allowed` };
}

/** URL.hostname keeps IPv6 brackets and DNS allows a trailing dot; neither changes the host. */
function normalizeHost(host: string): string {
  return host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");
}

function parseCidr(text: string): Cidr {
  const [addressText = "", prefixText] = text.split("/");
  const bytes = parseAddress(addressText);
  if (bytes === undefined) throw new RangeError(`invalid CIDR: ${text}`);
  const familyBits = isIPv4(addressText) ? 32 : 128;
  const prefix = prefixText === undefined ? familyBits : Number(prefixText);
  if (!/^\d*$/.test(prefixText ?? "") || !Number.isInteger(prefix) || prefix < 0 || prefix > familyBits) {
    throw new RangeError(`invalid CIDR: ${text}`);
  }
  return { bytes, prefixBits: prefix + (128 - familyBits) };
}

function contains(cidr: Cidr, address: Address): boolean {
  const fullBytes = Math.floor(cidr.prefixBits / 8);
  for (let i = 0; i < fullBytes; i++) if (cidr.bytes[i] !== address[i]) return false;
  const restBits = cidr.prefixBits % 8;
  if (restBits === 0) return true;
  const mask = (0xff << (8 - restBits)) & 0xff;
  return ((cidr.bytes[fullBytes] ?? 0) & mask) === ((address[fullBytes] ?? 0) & mask);
}

function parseAddress(text: string): Address | undefined {
  const bare = text.replace(/%.*$/, ""); // IPv6 zone index ("fe80::1%eth0") does not change the range
  if (isIPv4(bare)) return ipv4Mapped(Uint8Array.from(bare.split(".").map(Number)));
  if (isIPv6(bare)) return parseIpv6(bare);
  return undefined;
}

function ipv4Mapped(ipv4: Uint8Array): Address {
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  bytes.set(ipv4, 12);
  return bytes;
}

/** Expects text that `isIPv6` accepted: at most one "::", optionally a dotted IPv4 tail. */
function parseIpv6(text: string): Address {
  const hexOnly = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => {
    const group = (high: string, low: string) => ((Number(high) << 8) | Number(low)).toString(16);
    return `${group(a, b)}:${group(c, d)}`;
  });
  const [left = "", right] = hexOnly.split("::");
  const parseGroups = (part: string) =>
    part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16));
  const head = parseGroups(left);
  const tail = right === undefined ? [] : parseGroups(right);
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}
