/**
 * Scopes: the stream an alert came in under (AlertNew.scope). A rule matches only alerts of scopes its
 * client is granted:
 *
 *   `client:<uuid>`   a client's private scope: that client only (lowercase canonical UUID, as ingest writes)
 *   `shared:<name>`   a shared scope: the clients the snapshot's grants give it to
 *   ``                internal producers writing straight to Kafka: every client, as before scopes
 *
 * Anything else matches no client and is reported as malformed, so that a buggy or hostile producer is
 * seen, not silently served.
 */
import { type ClientMatch, type Grant, NO_MATCHES } from "./types.ts";

const clientScopePrefix = "client:";
const sharedScopePrefix = "shared:";
const sharedScopeNamePattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Longer than any well-formed scope (`shared:` + 63): refused without a pattern test. */
const scopeLengthMax = sharedScopePrefix.length + 63;
/** Distinct scopes remembered per filter; past it the memory starts over (scopes are few: one per credential). */
const audiencesMax = 4096;

export function isSharedScopeName(name: string): boolean {
  return sharedScopeNamePattern.test(name);
}

export const clientScope = (clientId: string): string => `${clientScopePrefix}${clientId}`;
export const sharedScope = (name: string): string => `${sharedScopePrefix}${name}`;

/**
 * The clients one scope reaches, with the filtered form of each match result it has seen: the matcher
 * shares its result arrays across alerts, so a repeated (result, scope) costs one WeakMap lookup and
 * allocates nothing.
 */
class Audience {
  readonly #filtered = new WeakMap<readonly ClientMatch[], readonly ClientMatch[]>();

  /** `clients` undefined: every client. */
  constructor(private readonly clients: ReadonlySet<string> | undefined) {}

  /** The groups of `groups` whose client this audience holds; `groups` itself when all of them. */
  admit(groups: readonly ClientMatch[]): readonly ClientMatch[] {
    const clients = this.clients;
    if (clients === undefined || groups.length === 0) return groups;
    if (clients.size === 0) return NO_MATCHES;
    let filtered = this.#filtered.get(groups);
    if (filtered === undefined) {
      const kept = groups.filter((group) => clients.has(group.clientId));
      filtered = kept.length === groups.length ? groups : kept.length === 0 ? NO_MATCHES : kept;
      this.#filtered.set(groups, filtered);
    }
    return filtered;
  }
}

/** Which clients each scope reaches, from one snapshot's grants; replaced with the snapshot. */
export class ScopeFilter {
  /** Shared scope name -> the clients granted it. */
  readonly #grants = new Map<string, Set<string>>();
  readonly #audiences = new Map<string, Audience>();

  constructor(grants: readonly Grant[]) {
    for (const { scope, clientId } of grants) {
      let clients = this.#grants.get(scope);
      if (clients === undefined) {
        clients = new Set();
        this.#grants.set(scope, clients);
      }
      clients.add(clientId);
    }
  }

  /**
   * The groups of `groups` (a match result) whose client is granted `scope`, or undefined when `scope` is
   * malformed (no client may see such an alert). The result may be `groups` itself or shared with later
   * calls: never mutate it.
   */
  admit(scope: string, groups: readonly ClientMatch[]): readonly ClientMatch[] | undefined {
    if (scope === "") return groups;
    return this.#audience(scope)?.admit(groups);
  }

  #audience(scope: string): Audience | undefined {
    let audience = this.#audiences.get(scope);
    if (audience !== undefined) return audience;
    if (scope.length > scopeLengthMax) return undefined;
    if (scope.startsWith(clientScopePrefix)) {
      const clientId = scope.slice(clientScopePrefix.length);
      if (!uuidPattern.test(clientId)) return undefined;
      audience = new Audience(new Set([clientId]));
    } else if (scope.startsWith(sharedScopePrefix)) {
      const name = scope.slice(sharedScopePrefix.length);
      if (!isSharedScopeName(name)) return undefined;
      audience = new Audience(this.#grants.get(name) ?? new Set());
    } else {
      return undefined;
    }
    if (this.#audiences.size >= audiencesMax) this.#audiences.clear();
    this.#audiences.set(scope, audience);
    return audience;
  }
}
