import { type Principal, scopeOf } from "./auth.ts";
import { isInt64Id } from "./pagination.ts";
import { type Infer, isUuid, type JsonSchema, type ObjectSchema } from "./schema.ts";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

type Parsed<S> = S extends ObjectSchema ? Infer<S> : undefined;

/** A path parameter's name in the path, how it is checked, and its schema for the OpenAPI document. */
interface PathParamKind {
  name: string;
  isValid(value: string): boolean;
  /** Why a value is refused: the 400 names `name` with it. */
  reason: string;
  schema: JsonSchema;
}

const topicNamePattern = /^[A-Za-z0-9._-]{1,249}$/;

/** The kinds of path parameter a route may take: a resource's id, or a Kafka topic's name. */
export const pathParamKinds = {
  uuid: { name: "id", isValid: isUuid, reason: "must be a UUID", schema: { type: "string", format: "uuid" } },
  int64: {
    name: "id",
    isValid: isInt64Id,
    reason: "must be a positive 64-bit integer",
    schema: { type: "string", pattern: "^[1-9][0-9]{0,18}$" },
  },
  topic: {
    name: "topic",
    isValid: (value) => topicNamePattern.test(value),
    reason: "must be a Kafka topic name",
    schema: { type: "string", pattern: topicNamePattern.source },
  },
} as const satisfies Record<string, PathParamKind>;

export type IdKind = keyof typeof pathParamKinds;

export interface RouteContext<B, Q> {
  principal: Principal;
  /** The path parameter (`:id`, or the name its `idKind` gives), already checked against `idKind`. */
  id: string;
  body: Parsed<B>;
  query: Parsed<Q>;
}

/**
 * One row of the route table: the server dispatches on it and the OpenAPI document is generated
 * from it, so the two cannot drift apart.
 */
export interface RouteSpec<B extends ObjectSchema | undefined, Q extends ObjectSchema | undefined> {
  method: Method;
  /** Bun route pattern with at most one parameter, the one `idKind` names. */
  path: string;
  operationId: string;
  summary: string;
  /** `admin`: the admin token only; `tenant`: the admin token or a client key, scoped to its client. */
  access: "admin" | "tenant";
  idKind?: IdKind;
  body?: B;
  /** A request with an empty body counts as `{}`. */
  bodyOptional?: boolean;
  /** Error statuses beyond those the other fields imply, for the OpenAPI document. */
  moreErrorStatuses?: readonly number[];
  query?: Q;
  response: { status: 200 | 201 | 202 | 204; schema?: JsonSchema };
  handle(ctx: RouteContext<B, Q>): Promise<unknown>;
}

export type Route = RouteSpec<ObjectSchema | undefined, ObjectSchema | undefined>;

/** Keeps the handler's `body` and `query` typed from the schemas given beside it. */
export function defineRoute<
  B extends ObjectSchema | undefined = undefined,
  Q extends ObjectSchema | undefined = undefined,
>(spec: RouteSpec<B, Q>): Route {
  return spec as unknown as Route;
}

/**
 * A resource's PUT (every field) and PATCH (some fields) under `${base}/:id`: both carry the version
 * last read and answer with the updated resource, so they differ only in the body they accept.
 */
export function updateRoutes<P extends ObjectSchema, Q extends ObjectSchema>(spec: {
  base: string;
  /** Capitalized, as in the operation ids: "Rule" gives replaceRule and updateRule. */
  resource: string;
  put: P;
  /** What a PUT leaves out is reset to these: a replacement, not a merge. */
  putDefaults?: Partial<Parsed<P>>;
  patch: Q;
  schema: JsonSchema;
  update(scope: string | null, id: string, body: Parsed<P> | Parsed<Q>): Promise<unknown>;
}): Route[] {
  const noun = spec.resource.toLowerCase();
  const common = {
    path: `${spec.base}/:id`,
    access: "tenant",
    idKind: "uuid",
    response: { status: 200, schema: spec.schema },
  } as const;
  return [
    defineRoute<P>({
      ...common,
      method: "PUT",
      operationId: `replace${spec.resource}`,
      summary: `Replace a ${noun}`,
      body: spec.put,
      handle: ({ principal, id, body }) =>
        spec.update(scopeOf(principal), id, { ...spec.putDefaults, ...body } as Parsed<P>),
    }),
    defineRoute<Q>({
      ...common,
      method: "PATCH",
      operationId: `update${spec.resource}`,
      summary: `Update some fields of a ${noun}`,
      body: spec.patch,
      handle: ({ principal, id, body }) => spec.update(scopeOf(principal), id, body),
    }),
  ];
}
