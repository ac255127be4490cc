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
/**
 * Scopes remembered per generation (about one per ingest credential in use). Two generations: when the young
 * one is full it becomes the old one, and scopes found in the old one move back, so a working set up to this
 * size never loses its filtered results.
 */
const audiencesPerGeneration = 16_384;

export function isSharedScopeName(name: string): boolean {
  return sharedScopeNamePattern.test(name);
}

/** Whether `scope` has one of the three forms above. */
export function isScope(scope: string): boolean {
  if (scope === "") return true;
  if (scope.startsWith(clientScopePrefix)) return uuidPattern.test(scope.slice(clientScopePrefix.length));
  return scope.startsWith(sharedScopePrefix) && isSharedScopeName(scope.slice(sharedScopePrefix.length));
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
  #young = new Map<string, Audience>();
  #old = new Map<string, Audience>();

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
    let audience = this.#young.get(scope);
    if (audience !== undefined) return audience;
    audience = this.#old.get(scope) ?? this.#newAudience(scope);
    if (audience === undefined) return undefined;
    if (this.#young.size >= audiencesPerGeneration) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(scope, audience);
    return audience;
  }

  #newAudience(scope: string): Audience | undefined {
    if (scope.length > scopeLengthMax || !isScope(scope)) return undefined;
    if (scope.startsWith(clientScopePrefix))
      return new Audience(new Set([scope.slice(clientScopePrefix.length)]));
    return new Audience(this.#grants.get(scope.slice(sharedScopePrefix.length)) ?? new Set());
  }
}
