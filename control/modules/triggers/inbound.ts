import { Value } from '@sinclair/typebox/value';
import { Elysia, t } from 'elysia';
import { tooManyFailedAuthentications } from '../../auth/authenticate.ts';
import type { FailedAuthLimiter, FixedWindowRateLimiter } from '../../auth/index.ts';
import { ApiError, errorModels, type FieldIssue, invalidField, payloadTooLarge } from '../../errors.ts';
import { clientAddress, peerOf } from '../../http/client-address.ts';
import { jsonTooDeep, MAX_JSON_DEPTH, pathOfNul, readBodyText } from '../../http/json-body.ts';
import { API_RESPONSE_HEADERS } from '../../http/request-guards.ts';
import { FireTriggerBody, TriggerFired } from './model.ts';
import { TRIGGER_MAX_BODY_BYTES, type TriggerService } from './service.ts';

const JSON_TYPE = /^application\/(?:[a-z0-9.-]+\+)?json$/;

/** A schema's failures as the API's 422 names them: one `{ field, message }` per field. */
function issuesOf(value: unknown): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const e of Value.Errors(FireTriggerBody, value)) {
    const field = e.path.replace(/^\//, '').replace(/\//g, '.') || '(body)';
    if (!issues.some((i) => i.field === field)) issues.push({ field, message: e.message });
  }
  return issues;
}

/** The body, parsed under the API's rules (JSON only, nesting, no NUL) and checked against the schema. */
function parseBody(request: Request, text: string): FireTriggerBody {
  const mediaType = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!JSON_TYPE.test(mediaType))
    throw new ApiError(
      415,
      'unsupported_media_type',
      `${mediaType ? `content type ${mediaType}` : 'a body without a content type'} is not accepted here; send application/json`,
      { accepted: ['application/json'] },
    );
  if (jsonTooDeep(text))
    throw new ApiError(400, 'body_too_deep', `JSON nests deeper than ${MAX_JSON_DEPTH} levels`, {
      maxDepth: MAX_JSON_DEPTH,
    });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'malformed_body', 'request body is not valid JSON');
  }
  const nul = pathOfNul(value);
  if (nul) throw invalidField(nul, 'must not contain NUL characters');
  const issues = issuesOf(value);
  if (issues.length > 0)
    throw new ApiError(422, 'validation_failed', `${issues[0]!.field}: ${issues[0]!.message}`, issues);
  return value as FireTriggerBody;
}

/**
 * `POST /webhooks/triggers/{id}`: a CRM or a form starts what the trigger does, authenticated by
 * the trigger's Standard Webhooks signature instead of an API key. In order: the failed
 * authentications of the client address (429), the body read up to its limit (413), the trigger
 * (404), the signature and its timestamp (401: nothing started), the trigger's rate limit (429),
 * the body (415/400/422), then the action (see {@link TriggerService.fire}).
 */
export const inboundTriggers = (
  service: TriggerService,
  limits: { failedAuth: FailedAuthLimiter; rateLimiter: FixedWindowRateLimiter },
) =>
  new Elysia({ name: 'sipai/inbound-triggers' })
    .use(errorModels)
    .onRequest(({ set }) => {
      Object.assign(set.headers, API_RESPONSE_HEADERS);
    })
    .post(
      '/webhooks/triggers/:id',
      async ({ request, params, set }) => {
        const address = clientAddress(request, peerOf(request));
        if (address) {
          const check = limits.failedAuth.check(address);
          if (!check.ok)
            throw tooManyFailedAuthentications(
              limits.failedAuth.limit,
              limits.failedAuth.windowMs / 1000,
              check.retryAfterSec,
            );
        }
        const length = request.headers.get('content-length');
        if (length !== null && !(Number(length) <= TRIGGER_MAX_BODY_BYTES))
          throw payloadTooLarge(TRIGGER_MAX_BODY_BYTES);
        const text = await readBodyText(request, TRIGGER_MAX_BODY_BYTES);
        let authenticated: Awaited<ReturnType<TriggerService['authenticate']>>;
        try {
          authenticated = await service.authenticate(params.id, request.headers, text);
        } catch (err) {
          if (address && err instanceof ApiError && err.status === 401) limits.failedAuth.fail(address);
          throw err;
        }
        const { trigger, messageId } = authenticated;
        const limit = await limits.rateLimiter.take(`trigger:${trigger.id}`);
        if (!limit.ok)
          throw new ApiError(
            429,
            'rate_limited',
            `this trigger is over its limit of ${limits.rateLimiter.limit} requests per ${limits.rateLimiter.windowMs / 1000} s; retry in ${limit.retryAfterSec} s`,
            {
              limit: limits.rateLimiter.limit,
              windowSec: limits.rateLimiter.windowMs / 1000,
              retryAfterSec: limit.retryAfterSec,
            },
            { 'retry-after': String(limit.retryAfterSec) },
          );
        const body = parseBody(request, text);
        const fired = await service.fire(trigger, messageId, body);
        set.status = 201;
        return fired;
      },
      {
        params: t.Object({ id: t.String({ maxLength: 64 }) }),
        parse: 'none',
        response: {
          201: TriggerFired,
          400: 'Error',
          401: 'Error',
          403: 'Error',
          404: 'Error',
          409: 'Error',
          413: 'Error',
          415: 'Error',
          422: 'Error',
          429: 'Error',
          502: 'Error',
          503: 'Error',
        },
        detail: { summary: 'Fire a trigger', tags: ['triggers'], security: [] },
      },
    );
