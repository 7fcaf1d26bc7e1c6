import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels, errorResponses, type RouteErrors } from '../../errors.ts';
import { DEFAULT_PAGE_SIZE } from '../../pagination.ts';
import {
  CreateTriggerBody,
  DeletedTrigger,
  RotateTriggerSecretBody,
  Trigger,
  TriggerListQuery,
  TriggerPage,
  TriggerParams,
  TriggerWithSecret,
  UpdateTriggerBody,
} from './model.ts';
import { MAX_TRIGGERS_PER_ACCOUNT, type TriggerService } from './service.ts';

const detail = (summary: string, description?: string, errors?: RouteErrors) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['triggers'],
  security: bearerSecurity,
  ...(errors ? { responses: errorResponses(errors) } : {}),
});

const fieldError = (summary: string, field: string, message: string) => ({
  summary,
  code: 'validation_failed',
  message: `${field}: ${message}`,
  details: [{ field, message }],
});

/** 422s of the trigger's settings that its schema alone cannot state. */
const SETTING_ERRORS = [
  fieldError('A field the action needs is missing', 'from', 'is required for a call trigger'),
  fieldError(
    'A field of the other action',
    'campaignId',
    'only campaign_contact triggers take campaignId; this one is a call trigger',
  ),
  fieldError(
    'The agent is not in this account',
    'agentId',
    'no agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab in this account',
  ),
];

/**
 * `/v1/triggers`: the account's inbound triggers, URLs a CRM or a form POSTs to (signed with the
 * trigger's own secret, no API key) to start a call or add a campaign contact.
 */
export const triggers = (auth: ApiKeyAuth, service: TriggerService) =>
  new Elysia({ name: 'sipai/triggers' })
    .use(errorModels)
    .use(auth)
    .get(
      '/triggers',
      ({ principal, query }) =>
        service.list(principal.accountId, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        query: TriggerListQuery,
        response: { 200: TriggerPage, 422: 'Error', ...authErrors },
        detail: detail('List triggers', 'Newest first, cursor-paginated. Secrets are never shown again.'),
      },
    )
    .post(
      '/triggers',
      async ({ principal, body, set }) => {
        const created = await service.create(principal.accountId, body);
        set.status = 201;
        return created;
      },
      {
        body: CreateTriggerBody,
        parse: 'json',
        response: { 201: TriggerWithSecret, 400: 'Error', 409: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Create a trigger',
          'A `call` trigger needs `agentId`, `from` and `provider`; a `campaign_contact` trigger needs `campaignId` (422 naming the field missing, or the one that belongs to the other action). The response carries `url` and the signing secret (`whsec_…`), once. The CRM or form then POSTs `{ "to": "+1…", "variables": { … } }` to `url`, signed with the secret by the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp` within 5 minutes, `webhook-signature`); no API key. Unsigned, stale, wrongly signed and replayed requests get 401 and start nothing; a call started answers 201 with the call (docs/events.md, "Inbound triggers").',
          {
            409: [
              {
                summary: 'The account has its maximum of triggers',
                code: 'too_many_triggers',
                message: `an account may have ${MAX_TRIGGERS_PER_ACCOUNT} triggers`,
              },
            ],
            422: SETTING_ERRORS,
          },
        ),
      },
    )
    .get('/triggers/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: TriggerParams,
      response: { 200: Trigger, 404: 'Error', ...authErrors },
      detail: detail(
        'Get a trigger',
        'Its action and settings, its URL, whether it is enabled and when it last fired; never its secret.',
      ),
    })
    .patch(
      '/triggers/:id',
      ({ principal, params, body }) => service.update(principal.accountId, params.id, body),
      {
        params: TriggerParams,
        body: UpdateTriggerBody,
        parse: 'json',
        response: { 200: Trigger, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Update a trigger',
          'Fields given replace the stored ones; the action stays. `enabled: false` makes it refuse every request (403 `trigger_disabled`).',
          { 422: SETTING_ERRORS.slice(1) },
        ),
      },
    )
    .delete('/triggers/:id', ({ principal, params }) => service.delete(principal.accountId, params.id), {
      params: TriggerParams,
      response: { 200: DeletedTrigger, 404: 'Error', ...authErrors },
      detail: detail('Delete a trigger', 'Its URL answers 404 from then on.'),
    })
    .post(
      '/triggers/:id/rotate-secret',
      ({ principal, params, body }) => service.rotateSecret(principal.accountId, params.id, body.overlapSec),
      {
        params: TriggerParams,
        body: RotateTriggerSecretBody,
        parse: 'json',
        response: { 200: TriggerWithSecret, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Rotate the signing secret',
          'Returns the new secret, once. Until `secretRotatedUntil` requests signed with the previous secret are still accepted, so the sender can switch without a refused request.',
        ),
      },
    );

export { inboundTriggers } from './inbound.ts';
export { TriggerService } from './service.ts';
