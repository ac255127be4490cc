import type { Principal } from "./auth.ts";
import type { Infer, JsonSchema, ObjectSchema } from "./schema.ts";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

type Parsed<S> = S extends ObjectSchema ? Infer<S> : undefined;

export interface RouteContext<B, Q> {
  principal: Principal;
  /** The `:id` path parameter, already checked against `idKind`. */
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
  /** Bun route pattern; the only parameter a path may have is `:id`. */
  path: string;
  operationId: string;
  summary: string;
  /** `admin`: the admin token only; `tenant`: the admin token or a client key, scoped to its client. */
  access: "admin" | "tenant";
  idKind?: "uuid" | "int64";
  body?: B;
  query?: Q;
  response: { status: 200 | 201 | 204; schema?: JsonSchema };
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
