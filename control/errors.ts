import { Elysia } from 'elysia';

/** An error the API answers with on purpose: a status, a stable code, and a message for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The one error body every `/v1` route answers with. */
export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

interface FieldIssue {
  field: string;
  message: string;
}

function validationIssues(error: unknown): FieldIssue[] {
  const all = (error as { all?: { path?: string; summary?: string; message?: string }[] }).all ?? [];
  return all.map((e) => ({
    field: (e.path ?? '').replace(/^\//, '').replaceAll('/', '.') || '(body)',
    message: e.summary ?? e.message ?? 'invalid',
  }));
}

/**
 * Maps every failure to `{ error: { code, message, details? } }`: our ApiErrors as they are,
 * schema failures as 422 naming each field, unparsable bodies as 400, unknown routes as 404,
 * and anything else as a 500 that leaks nothing.
 */
export const errorHandler = new Elysia({ name: 'sipai/errors' })
  .error({ ApiError })
  .onError({ as: 'global' }, ({ code, error, set }) => {
    if (error instanceof ApiError) {
      set.status = error.status;
      return errorBody(error.code, error.message, error.details);
    }
    switch (code) {
      case 'VALIDATION': {
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
      default:
        set.status = 500;
        return errorBody('internal', 'internal error');
    }
  });
