import { Elysia, t } from 'elysia';
import type { Logger } from '../core/observability/index.ts';
import { StoreUnavailableError } from '../core/store/redis-store.ts';

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

/** A field that failed validation, as `details` lists it: `field` is a dotted path (`endpointing.maxMs`). */
export interface FieldIssue {
  field: string;
  message: string;
}

/** 404 for a resource that does not exist or belongs to another account: the two look the same. */
export function notFound(kind: string, id: string): ApiError {
  return new ApiError(404, 'not_found', `no ${kind} ${id}`);
}

/** 422 naming one field, for rules a schema cannot state (cross-field, cross-row). */
export function invalidField(field: string, message: string): ApiError {
  return new ApiError(422, 'validation_failed', `${field}: ${message}`, [{ field, message }]);
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
        t.Unknown({ description: 'For `validation_failed`: `[{ field, message }]`, one per failing field.' }),
      ),
    }),
  },
  {
    examples: [
      {
        error: {
          code: 'validation_failed',
          message: 'greeting: Expected string length less or equal to 2000',
          details: [{ field: 'greeting', message: 'Expected string length less or equal to 2000' }],
        },
      },
    ],
  },
);

/** Plugin that names the shared schemas, so routes can say `401: 'Error'` and the docs get one `$ref`. */
export const errorModels = new Elysia({ name: 'sipai/error-models' }).model({ Error: ErrorSchema });

interface SchemaIssue {
  path?: string;
  summary?: string;
  message?: string;
  schema?: { enum?: unknown[] };
}

function validationIssues(error: unknown): FieldIssue[] {
  const all = (error as { all?: SchemaIssue[] }).all ?? [];
  const issues: FieldIssue[] = [];
  for (const e of all) {
    const field = (e.path ?? '').replace(/^\//, '').replace(/\//g, '.') || '(body)';
    const message = Array.isArray(e.schema?.enum)
      ? `must be one of ${e.schema.enum.join(', ')}`
      : (e.summary ?? e.message ?? 'invalid');
    // TypeBox reports a missing property twice (missing, then wrong type): keep the first.
    if (!issues.some((i) => i.field === field)) issues.push({ field, message });
  }
  return issues;
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
    .onError({ as: 'global' }, ({ code, error, set, request }) => {
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
                fields: validationIssues(error).map((i) => i.field),
                method: request.method,
                path: new URL(request.url).pathname,
              },
              'response breaks its schema',
            );
            set.status = 500;
            return errorBody('internal', 'internal error');
          }
          const issues = validationIssues(error);
          set.status = 422;
          const first = issues[0];
          return errorBody(
            'validation_failed',
            first ? `${first.field}: ${first.message}` : 'request does not match the schema',
            issues,
          );
        }
        case 'PARSE':
          set.status = 400;
          return errorBody(
            'malformed_body',
            'request body is not valid JSON (or not the declared content type)',
          );
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
