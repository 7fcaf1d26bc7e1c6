import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { StoreUnavailableError } from '../../../core/store/redis-store.ts';
import {
  invalidApiKey,
  missingApiKey,
  rateLimited,
  tooManyFailedAuthentications,
} from '../../auth/authenticate.ts';
import {
  type ApiError,
  dependencyUnavailable,
  type ErrorExample,
  errorExamplesObject,
  issueText,
  malformedBody,
  malformedId,
  notFound,
} from '../../errors.ts';
import { describeIssue, formatOf, kindOf } from '../../validation-messages.ts';

/**
 * The error responses of the OpenAPI document: every status a route declares gets its own
 * examples, each the body the API sends for it. The ones a route shares with every route of its
 * kind (401 and 429 behind an API key, 404 for its path ids, 422 from its own schemas, 400 for a
 * body, 503 for an outage) are made here from the route's schemas and the same error factories
 * the API throws; the rest (403, 409, 502, …) each route gives in `detail.responses`
 * (control/errors.ts `errorResponses`).
 */

type Json = Record<string, unknown>;

const ERROR_REF = '#/components/schemas/Error';

/** An id no id pattern of the API takes (a "!" is in none of them), for the malformed-id 404s. */
export const MALFORMED_ID = 'agent-7!';

/** A route as Elysia lists it, with the hooks the document is made from. */
export interface DocumentedRoute {
  method: string;
  path: string;
  hooks?: {
    params?: unknown;
    query?: unknown;
    body?: unknown;
    detail?: { hide?: boolean; security?: unknown[]; responses?: Record<string, unknown> };
  };
}

const example = (summary: string, error: ApiError): ErrorExample => ({
  summary,
  code: error.code,
  message: error.message,
  ...(error.details === undefined ? {} : { details: error.details }),
});

/** What each status means, for the response's description when the route gives none. */
const DESCRIPTIONS: Record<string, string> = {
  '400': 'The body is not valid JSON (or not the declared content type).',
  '401': 'No API key, or one that is malformed, unknown or revoked.',
  '403': 'The key may not do this.',
  '404': 'No such resource in this account (another account’s looks the same), or a malformed id.',
  '409': 'The resource’s state does not allow this.',
  '413': 'The body is larger than this route reads.',
  '415': 'The body is not of a content type this route takes.',
  '422':
    'A field or query parameter fails validation; `details` names each, `in: "query"` marks query parameters.',
  '429':
    'Too many requests: this key is over its rate limit, or this address over its failed authentications. Retry after `Retry-After` seconds.',
  '502': 'The provider refused the request.',
  '503': 'A dependency is unavailable; retry after `Retry-After` seconds.',
};

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
};
const HEADERS: Record<string, Json> = {
  '401': {
    'WWW-Authenticate': { description: 'Always `Bearer realm="sipai"`.', schema: { type: 'string' } },
  },
  '429': RETRY_AFTER,
  '503': RETRY_AFTER,
};

function objectSchema(schema: unknown): Json | null {
  return schema && typeof schema === 'object' && (schema as Json).type === 'object' ? (schema as Json) : null;
}

/** 404s of a route: for its last path id, one that does not exist and one that is malformed. */
function notFoundExamples(route: DocumentedRoute): ErrorExample[] {
  const params = objectSchema(route.hooks?.params);
  const properties = (params?.properties ?? {}) as Record<string, Json>;
  const names = Object.keys(properties);
  const examples: ErrorExample[] = [];
  for (const name of names) {
    const schema = properties[name];
    const pattern = typeof schema.pattern === 'string' ? schema.pattern : '';
    const segments = route.path.split('/');
    const segment = segments[segments.indexOf(`:${name}`) - 1] ?? '';
    const kind = kindOf(pattern) ?? (segment.replace(/ies$/, 'y').replace(/s$/, '') || 'resource');
    const sample = Array.isArray(schema.examples) ? String(schema.examples[0]) : `${kind}-id`;
    examples.push(example(`No such ${kind} in this account`, notFound(kind, sample)));
    const format = pattern ? formatOf(pattern) : null;
    if (format && !new RegExp(pattern).test(MALFORMED_ID)) {
      examples.push(example(`A malformed ${kind} id`, malformedId(kind, MALFORMED_ID, name, format)));
    }
  }
  return examples;
}

/** A value `schema` refuses, to show its message: wrong enum value, pattern, length or range. */
function violation(schema: Json): unknown {
  if (Array.isArray(schema.enum)) return 'unknown';
  if (typeof schema.pattern === 'string') return '12345';
  if (typeof schema.maxLength === 'number') return 'x'.repeat(schema.maxLength + 1);
  if (typeof schema.maximum === 'number') return schema.maximum + 1;
  return undefined;
}

/** Unwraps `T | null` and similar unions to the branch a violation is shown on. */
function concrete(schema: Json): Json {
  if (Array.isArray(schema.anyOf)) {
    const branch = (schema.anyOf as Json[]).find((b) => b.type !== 'null' && violation(b) !== undefined);
    if (branch) return branch;
  }
  return schema;
}

/** A 422 of the route's own query or body schema, with the message the API gives for it. */
function validationExamples(route: DocumentedRoute): ErrorExample[] {
  const examples: ErrorExample[] = [];
  const query = objectSchema(route.hooks?.query);
  if (query) {
    const props = (query.properties ?? {}) as Record<string, Json>;
    const limit = props.limit;
    if (limit && typeof limit.maximum === 'number') {
      const message = `must be at most ${limit.maximum}`;
      examples.push({
        summary: 'A query parameter out of range',
        code: 'validation_failed',
        message: issueText({ field: 'limit', in: 'query', message }),
        details: [{ field: 'limit', in: 'query', message }],
      });
    } else {
      const name = Object.keys(props).find((n) => violation(concrete(props[n])) !== undefined);
      if (name) {
        const schema = concrete(props[name]);
        const issue = Value.Errors(schema as unknown as TSchema, violation(schema)).First();
        const message = describeIssue(issue ?? {}, name, 'query');
        examples.push({
          summary: 'A query parameter that fails validation',
          code: 'validation_failed',
          message: issueText({ field: name, in: 'query', message }),
          details: [{ field: name, in: 'query', message }],
        });
      }
    }
  }
  const body = objectSchema(route.hooks?.body);
  if (body) {
    const props = (body.properties ?? {}) as Record<string, Json>;
    const required = new Set((body.required as string[] | undefined) ?? []);
    const names = Object.keys(props);
    const name =
      names.find((n) => required.has(n) && violation(concrete(props[n])) !== undefined) ??
      names.find((n) => violation(concrete(props[n])) !== undefined);
    if (name) {
      const schema = concrete(props[name]);
      const issue = Value.Errors(schema as unknown as TSchema, violation(schema)).First();
      const message = describeIssue(issue ?? {}, name);
      examples.push({
        summary: 'A field that fails validation',
        code: 'validation_failed',
        message: issueText({ field: name, message }),
        details: [{ field: name, message }],
      });
    }
    const typo = names[0] ? `${names[0]}x` : 'unknown';
    const unknownMessage = describeIssue({ type: 42, schema: body, path: `/${typo}` }, typo, 'body');
    examples.push({
      summary: 'A field this route does not take',
      code: 'validation_failed',
      message: issueText({ field: typo, message: unknownMessage }),
      details: [{ field: typo, message: unknownMessage }],
    });
  }
  return examples;
}

/** The examples a route shares with every route of its kind, for `status`. */
function sharedExamples(status: string, route: DocumentedRoute): ErrorExample[] {
  switch (status) {
    case '400':
      return route.hooks?.body ? [example('The body is not valid JSON', malformedBody())] : [];
    case '401':
      return [
        example('No API key', missingApiKey()),
        example('A key that is unknown or revoked', invalidApiKey()),
      ];
    case '404':
      return notFoundExamples(route);
    case '422':
      return validationExamples(route);
    case '429':
      return [
        example('This key is over its rate limit', rateLimited(600, 60, 12)),
        example('This address is over its failed authentications', tooManyFailedAuthentications(20, 60, 42)),
      ];
    case '503': {
      const database = dependencyUnavailable({ code: 'ECONNREFUSED' });
      const store = dependencyUnavailable(new StoreUnavailableError('store unavailable'));
      return [
        ...(database ? [example('The database is unavailable', database)] : []),
        ...(store ? [example('The Store is unavailable', store)] : []),
      ];
    }
  }
  return [];
}

/** The route's own examples for `status` from its `detail.responses`. */
function ownExamples(route: DocumentedRoute, status: string): { description?: string; examples: Json } {
  const response = route.hooks?.detail?.responses?.[status] as
    | { description?: string; content?: { 'application/json'?: { examples?: Json } } }
    | undefined;
  return {
    description: response?.description,
    examples: response?.content?.['application/json']?.examples ?? {},
  };
}

/**
 * Gives every error response of `paths` (the generated document's) its description, headers
 * and examples, from `routes`: the shared ones first, then the route's own.
 */
export function documentErrors(
  paths: Record<string, Record<string, Json>>,
  routes: readonly DocumentedRoute[],
): void {
  for (const route of routes) {
    if (route.hooks?.detail?.hide) continue;
    const op = paths[route.path.replace(/:([^/]+)/g, '{$1}')]?.[route.method.toLowerCase()];
    const responses = op?.responses as Record<string, Json> | undefined;
    if (!responses) continue;
    for (const status of new Set([
      ...Object.keys(responses),
      ...Object.keys(route.hooks?.detail?.responses ?? {}),
    ])) {
      if (status.startsWith('2')) continue;
      const generated = responses[status] as { content?: Record<string, { schema?: Json }> } | undefined;
      const schema = generated?.content?.['application/json']?.schema ?? { $ref: ERROR_REF };
      // Not the error body (health's 503 is its own report): nothing to add.
      if (schema.$ref !== ERROR_REF) continue;
      const own = ownExamples(route, status);
      const shared = sharedExamples(status, route);
      const examples = { ...errorExamplesObject(shared), ...own.examples };
      const general = DESCRIPTIONS[status] ?? `Error ${status}.`;
      responses[status] = {
        description:
          shared.length === 0
            ? own.description || general
            : own.description
              ? `${general} Also: ${own.description}.`
              : general,
        ...(HEADERS[status] ? { headers: HEADERS[status] } : {}),
        content: {
          'application/json': { schema, ...(Object.keys(examples).length > 0 ? { examples } : {}) },
        },
      };
    }
  }
}
