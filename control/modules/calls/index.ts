import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels } from '../../errors.ts';
import {
  Call,
  CallDetail,
  CallListQuery,
  CallPage,
  CallParams,
  CommandAccepted,
  CreateCallBody,
  HangupBody,
  SayBody,
  TransferBody,
} from './model.ts';
import type { CallService } from './service.ts';

/** A bare `POST …/hangup` (no body at all) means `{}`; anything else is parsed as JSON. */
function emptyAsObject({ request }: { request: Request }) {
  if (request.body === null || request.headers.get('content-length') === '0') return {};
}

const detail = (summary: string, description?: string) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['calls'],
  security: bearerSecurity,
});

/** `/v1/calls`: the account's calls, outbound calls, and live commands to a call. */
export const calls = (auth: ApiKeyAuth, service: CallService) =>
  new Elysia({ name: 'sipai/calls' })
    .use(errorModels)
    .use(auth)
    .get('/calls', ({ principal, query }) => service.list(principal.accountId, query), {
      query: CallListQuery,
      response: { 200: CallPage, 422: 'Error', ...authErrors },
      detail: detail(
        'List calls',
        'Newest first (by start time), cursor-paginated; filter by status, agent, campaign, direction and a start-time range (`since` inclusive, `until` exclusive).',
      ),
    })
    .post(
      '/calls',
      async ({ principal, body, set }) => {
        const call = await service.create(principal.accountId, body);
        set.status = 201;
        return call;
      },
      {
        body: CreateCallBody,
        parse: 'json',
        response: {
          201: Call,
          400: 'Error',
          422: 'Error',
          ...authErrors,
          502: 'Error',
          503: 'Error',
        },
        detail: detail(
          'Place an outbound call',
          'Takes the call’s concurrency slots (global, campaign, agent, and `originated` when TELEPHONY_OUTBOUND_MAX_CONCURRENCY caps API-originated calls) before asking the provider: when one is full, 429 `at_capacity` with `details: { scope, count, limit }` and Retry-After, and nothing is dialled. A provider refusal is 502 `provider_error` with the provider’s status and code; a provider this deployment has no credentials for is 503 `provider_not_configured`.',
        ),
      },
    )
    .get('/calls/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: CallParams,
      response: { 200: CallDetail, 404: 'Error', 422: 'Error', ...authErrors },
      detail: detail('Get a call', 'With its timeline, transcript and latency summary.'),
    })
    .post(
      '/calls/:id/hangup',
      async ({ principal, params, body, set }) => {
        const accepted = await service.hangup(principal.accountId, params.id, body?.reason);
        set.status = 202;
        return accepted;
      },
      {
        params: CallParams,
        body: HangupBody,
        parse: [emptyAsObject, 'json'],
        response: {
          202: CommandAccepted,
          400: 'Error',
          404: 'Error',
          409: 'Error',
          422: 'Error',
          ...authErrors,
          503: 'Error',
        },
        detail: detail(
          'Hang up a live call',
          'Delivered to the core node running the call, which ends it; 409 `call_not_live` when no node runs it (ended, or not answered yet). Send `{}` or a `reason`.',
        ),
      },
    )
    .post(
      '/calls/:id/transfer',
      async ({ principal, params, body, set }) => {
        const accepted = await service.transfer(principal.accountId, params.id, body.to);
        set.status = 202;
        return accepted;
      },
      {
        params: CallParams,
        body: TransferBody,
        parse: 'json',
        response: {
          202: CommandAccepted,
          400: 'Error',
          404: 'Error',
          409: 'Error',
          422: 'Error',
          ...authErrors,
          503: 'Error',
        },
        detail: detail(
          'Transfer a live call',
          'Delivered to the core node running the call, which hands the caller to `to` (an E.164 number or a `sip:` URI) through the call’s provider; the outcome is recorded on the call’s timeline. 409 `call_not_live` when no node runs it (ended, or not answered yet).',
        ),
      },
    )
    .post(
      '/calls/:id/say',
      async ({ principal, params, body, set }) => {
        const accepted = await service.say(principal.accountId, params.id, body.text);
        set.status = 202;
        return accepted;
      },
      {
        params: CallParams,
        body: SayBody,
        parse: 'json',
        response: {
          202: CommandAccepted,
          400: 'Error',
          404: 'Error',
          409: 'Error',
          422: 'Error',
          ...authErrors,
          503: 'Error',
        },
        detail: detail(
          'Make the agent say something',
          'Delivered to the core node running the call, where the agent speaks `text` in its own voice. 409 `call_not_live` when no node runs it (ended, or not answered yet).',
        ),
      },
    );

export { Call, CallDetail } from './model.ts';
export { DEFAULT_RING_TIMEOUT_SEC, OutboundDialing, type OutboundProvider } from './outbound.ts';
export {
  atCapacity,
  type CallRow,
  CallService,
  type PlacedCall,
  providerRefused,
  recordPlacedCall,
  refusalReason,
  toCall,
} from './service.ts';
export { latencySummary, type RecordedEvent, transcriptOf } from './timeline.ts';
