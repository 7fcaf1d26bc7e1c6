import { Elysia, t } from 'elysia';
import type { Logger } from '../core/observability/index.ts';
import { StoreUnavailableError } from '../core/store/redis-store.ts';
import { describeIssue, formatOf, kindOf, type SchemaIssue } from './validation-messages.ts';

/** An error the API answers with on purpose: a status, a stable code, and a message for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Response headers that belong to this error (`Retry-After`, `WWW-Authenticate`). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * A field that failed validation, as `details` lists it: `field` is a dotted path
 * (`endpointing.maxMs`) of the body, or with `in: 'query'` the name of a query parameter.
 */
export interface FieldIssue {
  field: string;
  message: string;
  in?: 'query';
}

/** 404 for a resource that does not exist or belongs to another account: the two look the same. */
export function notFound(kind: string, id: string): ApiError {
  return new ApiError(404, 'not_found', `no ${kind} ${id}`);
}

/** 422 naming one field, for rules a schema cannot state (cross-field, cross-row). */
export function invalidField(field: string, message: string): ApiError {
  return new ApiError(422, 'validation_failed', `${field}: ${message}`, [{ field, message }]);
}

/** 422 naming one query parameter as such. */
export function invalidQueryParameter(name: string, message: string): ApiError {
  return new ApiError(422, 'validation_failed', `query parameter ${name}: ${message}`, [
    { field: name, in: 'query', message },
  ]);
}

/** How an issue reads in an error's `message`: `greeting: …`, `query parameter limit: …`. */
export function issueText(issue: FieldIssue): string {
  return issue.in === 'query'
    ? `query parameter ${issue.field}: ${issue.message}`
    : `${issue.field}: ${issue.message}`;
}

/** 413: the request body is larger than the route reads. */
export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(
    413,
    'payload_too_large',
    `request body is larger than this route's limit of ${limitBytes} bytes`,
    { limitBytes },
  );
}

/** 415: a body of a content type the route does not take; `accepted` lists the ones it does. */
export function unsupportedMediaType(contentType: string, accepted: readonly string[]): ApiError {
  return new ApiError(
    415,
    'unsupported_media_type',
    `${contentType ? `content type ${contentType}` : 'a body without a content type'} is not accepted here; send ${accepted.join(' or ')}`,
    { accepted },
  );
}

/**
 * Error codes that mean "Postgres could not be reached", as the `postgres` driver and the OS
 * report them, plus the server's own connection-class SQLSTATEs: 08xxx (connection exception),
 * 57P01-57P03 (shutting down, crashed, starting up) and 53300 (too many connections).
 */
const DATABASE_UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** Whether `error` says the database is out of reach (not that a query was wrong). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return DATABASE_UNREACHABLE.has(code) || code.startsWith('08');
}

/**
 * A dependency outage as the API answers it: 503 with a stable code and `Retry-After`, so
 * clients back off and retry instead of treating it as a bug (500). Null for anything else.
 */
export function dependencyUnavailable(error: unknown): ApiError | null {
  if (isDatabaseUnavailable(error))
    return new ApiError(
      503,
      'database_unavailable',
      'the database is unavailable; retry shortly',
      undefined,
      {
        'retry-after': '1',
      },
    );
  if (error instanceof StoreUnavailableError)
    return new ApiError(503, 'store_unavailable', 'the store is unavailable; retry shortly', undefined, {
      'retry-after': '1',
    });
  return null;
}

/** 400: a body that is not JSON (or not the declared content type). */
export function malformedBody(): ApiError {
  return new ApiError(
    400,
    'malformed_body',
    'request body is not valid JSON (or not the declared content type)',
  );
}

/** One error a route documents: a short summary, and the error it answers with. */
export interface ErrorExample {
  summary: string;
  code: string;
  message: string;
  details?: unknown;
}

/** A route's own documented errors by status (those only it gives: 403, 409, 502, …). */
export type RouteErrors = Partial<Record<number, ErrorExample[]>>;

/** An example's key in the OpenAPI `examples` map: its code, numbered when a code repeats. */
function exampleKeys(examples: ErrorExample[]): string[] {
  return examples.map((e, i) =>
    examples.findIndex((o) => o.code === e.code) === i ? e.code : `${e.code}_${i + 1}`,
  );
}

/** The OpenAPI media-type `examples` of `examples`, each value the error body the route sends. */
export function errorExamplesObject(
  examples: ErrorExample[],
): Record<string, { summary: string; value: unknown }> {
  const keys = exampleKeys(examples);
  return Object.fromEntries(
    examples.map((e, i) => [keys[i], { summary: e.summary, value: errorBody(e.code, e.message, e.details) }]),
  );
}

/**
 * A route's own error examples as OpenAPI responses, for its `detail.responses`; the document
 * adds the examples every route of its kind shares (control/modules/docs/error-examples.ts).
 */
export function errorResponses(errors: RouteErrors) {
  return Object.fromEntries(
    Object.entries(errors).map(([status, examples = []]) => [
      status,
      {
        description: examples.map((e) => e.summary).join('; '),
        content: { 'application/json': { examples: errorExamplesObject(examples) } },
      },
    ]),
  );
}

/** The one error body every `/v1` route answers with. */
export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** The error body's schema, registered once as the OpenAPI component `Error`. */
export const ErrorSchema = t.Object(
  {
    error: t.Object({
      code: t.String({
        description: 'Stable, machine-readable code, e.g. `not_found`, `validation_failed`.',
      }),
      message: t.String({ description: 'What went wrong, for people.' }),
      details: t.Optional(
        t.Unknown({
          description:
            'For `validation_failed`: `[{ field, message, in? }]`, one per failing field (`in: "query"` for a query parameter). For other codes, what the code documents (e.g. `{ limit, windowSec, retryAfterSec }` for `rate_limited`).',
        }),
      ),
    }),
  },
  {
    examples: [
      {
        error: {
          code: 'validation_failed',
          message: 'greeting: must be at most 2000 characters',
          details: [{ field: 'greeting', message: 'must be at most 2000 characters' }],
        },
      },
    ],
  },
);

/** Plugin that names the shared schemas, so routes can say `401: 'Error'` and the docs get one `$ref`. */
export const errorModels = new Elysia({ name: 'sipai/error-models' }).model({ Error: ErrorSchema });

/** A schema failure as Elysia reports it: where it was (`body`, `query`, …) and each failed check. */
interface SchemaFailure {
  type?: string;
  value?: unknown;
  all?: SchemaIssue[];
}

/**
 * The query parameter an Elysia "property" failure is about. Elysia checks a coerced query
 * parameter (a number from its string) on its own and drops the name: find the parameter whose
 * value it was.
 */
function coercedParameter(request: Request, value: unknown): string {
  const names = [...new URL(request.url).searchParams].filter(
    ([, raw]) => raw === String(value) || (raw.trim() !== '' && Number(raw) === value),
  );
  return names.length === 1 ? names[0][0] : '(query)';
}

function validationIssues(error: SchemaFailure, request: Request): FieldIssue[] {
  const inQuery = error.type === 'query' || error.type === 'property';
  const issues: FieldIssue[] = [];
  for (const e of error.all ?? []) {
    const path = (e.path ?? '').replace(/^\//, '').replace(/\//g, '.');
    const field =
      path ||
      (error.type === 'property'
        ? coercedParameter(request, e.value ?? error.value)
        : inQuery
          ? '(query)'
          : '(body)');
    const message = describeIssue(e, field, inQuery ? 'query' : 'body');
    // TypeBox reports a missing property twice (missing, then wrong type): keep the first.
    if (!issues.some((i) => i.field === field))
      issues.push(inQuery ? { field, in: 'query', message } : { field, message });
  }
  return issues;
}

/**
 * A malformed id in a path as the API answers it: 404, as for an id that does not exist, with
 * the format ids of that kind have. `route` is the route's template (`/v1/agents/:id`).
 */
function malformedPathId(error: SchemaFailure, route: string | undefined): ApiError {
  const issue = error.all?.[0];
  const name = (issue?.path ?? '').replace(/^\//, '') || 'id';
  const raw = (error.value as Record<string, unknown> | undefined)?.[name];
  const value = typeof raw === 'string' ? raw : '';
  const pattern = typeof issue?.schema?.pattern === 'string' ? issue.schema.pattern : '';
  // The resource: from the id's prefix, else the path segment before the parameter (`calls`).
  const segments = (route ?? '').split('/');
  const segment = segments[segments.indexOf(`:${name}`) - 1] ?? '';
  const kind = kindOf(pattern) ?? (segment.replace(/ies$/, 'y').replace(/s$/, '') || 'resource');
  const format = pattern ? formatOf(pattern) : null;
  return malformedId(kind, value, name, format);
}

/** 404 for an id in a path that is not of its kind's format: the value, and the format. */
export function malformedId(kind: string, value: string, parameter: string, format: string | null): ApiError {
  const shown = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return new ApiError(
    404,
    'not_found',
    `no ${kind} ${JSON.stringify(shown)}${format ? `: ${format}` : ''}`,
    format ? { parameter, format } : { parameter },
  );
}

/**
 * Maps every failure to `{ error: { code, message, details? } }`: our ApiErrors as they are,
 * request schema failures as 422 naming each field, unparsable bodies as 400, unknown routes as
 * 404, Postgres or the Store out of reach as 503 (`database_unavailable`, `store_unavailable`),
 * and anything else (including a response that breaks its own schema) as a 500 that leaks
 * nothing.
 */
export const errorHandler = (log: Logger) =>
  new Elysia({ name: 'sipai/errors' })
    .error({ ApiError })
    .onError({ as: 'global' }, ({ code, error, set, request, route }) => {
      // A body parser of ours (e.g. the CSV upload) reports its ApiError wrapped in a ParseError.
      const apiError =
        error instanceof ApiError
          ? error
          : code === 'PARSE' && (error as { cause?: unknown }).cause instanceof ApiError
            ? ((error as { cause?: unknown }).cause as ApiError)
            : null;
      if (apiError) {
        set.status = apiError.status;
        if (apiError.headers) Object.assign(set.headers, apiError.headers);
        return errorBody(apiError.code, apiError.message, apiError.details);
      }
      switch (code) {
        case 'VALIDATION': {
          if ((error as { type?: string }).type === 'response') {
            // Field names only: the error and its messages hold response values, which may be secrets.
            log.error(
              {
                fields: validationIssues(error as SchemaFailure, request).map((i) => i.field),
                method: request.method,
                path: new URL(request.url).pathname,
              },
              'response breaks its schema',
            );
            set.status = 500;
            return errorBody('internal', 'internal error');
          }
          if ((error as SchemaFailure).type === 'params') {
            const missing = malformedPathId(error as SchemaFailure, route);
            set.status = missing.status;
            return errorBody(missing.code, missing.message, missing.details);
          }
          const issues = validationIssues(error as SchemaFailure, request);
          set.status = 422;
          const first = issues[0];
          return errorBody(
            'validation_failed',
            first ? issueText(first) : 'request does not match the schema',
            issues,
          );
        }
        case 'PARSE': {
          const malformed = malformedBody();
          set.status = malformed.status;
          return errorBody(malformed.code, malformed.message);
        }
        case 'NOT_FOUND':
          set.status = 404;
          return errorBody('not_found', 'no such route');
        default: {
          const outage = dependencyUnavailable(error);
          if (outage) {
            log.warn(
              {
                code: outage.code,
                err: (error as Error).message,
                method: request.method,
                path: new URL(request.url).pathname,
              },
              'request failed: dependency unavailable',
            );
            set.status = outage.status;
            Object.assign(set.headers, outage.headers);
            return errorBody(outage.code, outage.message);
          }
          log.error(
            { err: error, method: request.method, path: new URL(request.url).pathname },
            'request failed',
          );
          set.status = 500;
          return errorBody('internal', 'internal error');
        }
      }
    });
