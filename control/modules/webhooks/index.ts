import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels, errorResponses, type RouteErrors } from '../../errors.ts';
import { DEFAULT_PAGE_SIZE } from '../../pagination.ts';
import {
  CreateWebhookBody,
  DeletedWebhook,
  DeliveryListQuery,
  DeliveryPage,
  DeliveryParams,
  ReplayedDeliveries,
  RotateSecretBody,
  UpdateWebhookBody,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookListQuery,
  WebhookPage,
  WebhookParams,
} from './model.ts';
import { MAX_ENDPOINTS_PER_ACCOUNT, type WebhookService } from './service.ts';

const detail = (summary: string, description?: string, errors?: RouteErrors) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['webhooks'],
  security: bearerSecurity,
  ...(errors ? { responses: errorResponses(errors) } : {}),
});

/** 422 for a destination the platform will not call. */
const PRIVATE_URL_MESSAGE =
  'resolves to 10.0.0.7, a private, loopback or link-local address; webhooks go to public addresses only';
const PRIVATE_URL = {
  summary: 'A URL that resolves to a private address',
  code: 'validation_failed',
  message: `url: ${PRIVATE_URL_MESSAGE}`,
  details: [{ field: 'url', message: PRIVATE_URL_MESSAGE }],
};

/**
 * `/v1/webhooks`: the account's webhook endpoints (events POSTed to its URLs, signed with the
 * Standard Webhooks scheme), their secrets, test requests, delivery logs and replays.
 */
export const webhooks = (auth: ApiKeyAuth, service: WebhookService) =>
  new Elysia({ name: 'sipai/webhooks' })
    .use(errorModels)
    .use(auth)
    .get(
      '/webhooks',
      ({ principal, query }) =>
        service.list(principal.accountId, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        query: WebhookListQuery,
        response: { 200: WebhookPage, 422: 'Error', ...authErrors },
        detail: detail(
          'List webhook endpoints',
          'Newest first, cursor-paginated. Secrets are never shown again.',
        ),
      },
    )
    .post(
      '/webhooks',
      async ({ principal, body, set }) => {
        const created = await service.create(principal.accountId, body);
        set.status = 201;
        return created;
      },
      {
        body: CreateWebhookBody,
        parse: 'json',
        response: { 201: WebhookEndpointWithSecret, 400: 'Error', 409: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Create a webhook endpoint',
          'Events of the account are POSTed to `url` as they are recorded (docs/events.md lists them), signed with the Standard Webhooks scheme. The response carries the signing secret (`whsec_…`), once. A URL that resolves to a private, loopback or link-local address is refused (422).',
          {
            409: [
              {
                summary: 'The account has its maximum of endpoints',
                code: 'too_many_endpoints',
                message: `an account may have ${MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints`,
              },
            ],
            422: [PRIVATE_URL],
          },
        ),
      },
    )
    .get('/webhooks/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: WebhookParams,
      response: { 200: WebhookEndpoint, 404: 'Error', ...authErrors },
      detail: detail(
        'Get a webhook endpoint',
        'Its URL, event filter, whether it is enabled (and why the platform disabled it), never its secret.',
      ),
    })
    .patch(
      '/webhooks/:id',
      ({ principal, params, body }) => service.update(principal.accountId, params.id, body),
      {
        params: WebhookParams,
        body: UpdateWebhookBody,
        parse: 'json',
        response: { 200: WebhookEndpoint, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Update a webhook endpoint',
          'Fields given replace the stored ones. `enabled: true` re-enables an endpoint the platform disabled; its pending deliveries then flow again.',
          { 422: [PRIVATE_URL] },
        ),
      },
    )
    .delete('/webhooks/:id', ({ principal, params }) => service.delete(principal.accountId, params.id), {
      params: WebhookParams,
      response: { 200: DeletedWebhook, 404: 'Error', ...authErrors },
      detail: detail('Delete a webhook endpoint', 'Its pending deliveries and its delivery log go with it.'),
    })
    .post(
      '/webhooks/:id/rotate-secret',
      ({ principal, params, body }) => service.rotateSecret(principal.accountId, params.id, body.overlapSec),
      {
        params: WebhookParams,
        body: RotateSecretBody,
        parse: 'json',
        response: { 200: WebhookEndpointWithSecret, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Rotate the signing secret',
          'Returns the new secret, once. Until `secretRotatedUntil` every request carries two signatures, one per secret, so receivers verify with either while they switch.',
        ),
      },
    )
    .post('/webhooks/:id/test', ({ principal, params }) => service.test(principal.accountId, params.id), {
      params: WebhookParams,
      response: { 200: WebhookDelivery, 404: 'Error', ...authErrors },
      detail: detail(
        'Send a test event',
        'POSTs a signed `webhook.test` event to the endpoint now, one attempt, and returns the delivery: the receiver’s status code or why it failed.',
      ),
    })
    .get(
      '/webhooks/:id/deliveries',
      ({ principal, params, query }) => service.deliveries(principal.accountId, params.id, query),
      {
        params: WebhookParams,
        query: DeliveryListQuery,
        response: { 200: DeliveryPage, 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail('List deliveries', 'The endpoint’s delivery log, newest first; `status` filters it.'),
      },
    )
    .post(
      '/webhooks/:id/deliveries/:deliveryId/replay',
      ({ principal, params }) => service.replay(principal.accountId, params.id, params.deliveryId),
      {
        params: DeliveryParams,
        response: { 200: WebhookDelivery, 404: 'Error', ...authErrors },
        detail: detail(
          'Replay a delivery',
          'Sends the event again with a fresh series of attempts, whatever its status. It carries the same `webhook-id`.',
        ),
      },
    )
    .post(
      '/webhooks/:id/replay-failed',
      ({ principal, params }) => service.replayFailed(principal.accountId, params.id),
      {
        params: WebhookParams,
        response: { 200: ReplayedDeliveries, 404: 'Error', ...authErrors },
        detail: detail(
          'Replay failed deliveries',
          'Every failed delivery of the endpoint is attempted again.',
        ),
      },
    );

export type { DeliveryPolicy } from './delivery.ts';
export { WebhookService } from './service.ts';
