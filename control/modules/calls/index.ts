import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels, errorResponses, type RouteErrors } from '../../errors.ts';
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

const detail = (summary: string, description?: string, errors?: RouteErrors) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['calls'],
  security: bearerSecurity,
  ...(errors ? { responses: errorResponses(errors) } : {}),
});

/** Errors of the live commands: no node runs the call, or the command could not be sent. */
const COMMAND_ERRORS: RouteErrors = {
  409: [
    {
      summary: 'No core node runs the call (ended, or not answered yet)',
      code: 'call_not_live',
      message: 'call cal_01j9x6k3m2q8w5r7t4v0y1z3ab has no live session on any core node',
    },
  ],
  503: [
    {
      summary: 'The command could not be sent',
      code: 'store_unavailable',
      message: 'the command could not be sent; retry',
    },
  ],
};

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
        },
        detail: detail(
          'Place an outbound call',
          'Takes the call’s concurrency slots (global, campaign, agent, and `originated` when TELEPHONY_OUTBOUND_MAX_CONCURRENCY caps API-originated calls) before asking the provider: when one is full, 429 `at_capacity` with `details: { scope, count, limit }` and Retry-After, and nothing is dialled. A provider refusal is 502 `provider_error` with the provider’s status and code; a provider this deployment has no credentials for is 503 `provider_not_configured`.',
          {
            422: [
              {
                summary: 'The agent is not in this account',
                code: 'validation_failed',
                message: 'agentId: no agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab in this account',
                details: [
                  { field: 'agentId', message: 'no agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab in this account' },
                ],
              },
            ],
            429: [
              {
                summary: 'A concurrency limit is full',
                code: 'at_capacity',
                message: 'the agent limit of 5 live calls is reached (5 live); retry when calls end',
                details: { scope: 'agent', count: 5, limit: 5 },
              },
            ],
            502: [
              {
                summary: 'The provider refused the call',
                code: 'provider_error',
                message: "twilio answered 400 (21211): The 'To' number +1415555 is not a valid phone number.",
                details: {
                  provider: 'twilio',
                  kind: 'http',
                  status: 400,
                  providerCode: '21211',
                  retryable: false,
                },
              },
            ],
            503: [
              {
                summary: 'The provider has no credentials here',
                code: 'provider_not_configured',
                message:
                  'outbound calls through twilio are not configured on this deployment: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN',
                details: { provider: 'twilio', missing: ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'] },
              },
            ],
          },
        ),
      },
    )
    .get('/calls/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: CallParams,
      response: { 200: CallDetail, 404: 'Error', ...authErrors },
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
        },
        detail: detail(
          'Hang up a live call',
          'Delivered to the core node running the call, which ends it; 409 `call_not_live` when no node runs it (ended, or not answered yet). Send `{}` or a `reason`.',
          COMMAND_ERRORS,
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
        },
        detail: detail(
          'Transfer a live call',
          'Delivered to the core node running the call, which hands the caller to `to` (an E.164 number or a `sip:` URI) through the call’s provider; the outcome is recorded on the call’s timeline. 409 `call_not_live` when no node runs it (ended, or not answered yet).',
          COMMAND_ERRORS,
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
        },
        detail: detail(
          'Make the agent say something',
          'Delivered to the core node running the call, where the agent speaks `text` in its own voice. 409 `call_not_live` when no node runs it (ended, or not answered yet).',
          COMMAND_ERRORS,
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
