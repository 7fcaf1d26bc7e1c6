import { t } from 'elysia';
import { EVENT_TYPE_NAMES } from '../../../core/events/catalogue.ts';
import { pageOf, pageQuery } from '../../pagination.ts';
import { integer, oneOf } from '../../schema.ts';

const ENDPOINT_ID = '^whk_[0-9a-z]{26}$';
const DELIVERY_ID = '^dlv_[0-9a-f]{26}$';

/** Longest URL an endpoint may have. */
export const MAX_URL_CHARS = 2048;

/** Event types of the catalogue, as an endpoint's filter takes them. */
const EventTypeName = oneOf(EVENT_TYPE_NAMES as unknown as [string, ...string[]], {
  description: 'An event type of the catalogue (docs/events.md).',
});

const Url = t.String({
  minLength: 1,
  maxLength: MAX_URL_CHARS,
  pattern: '^https?://[^\\s]+$',
  description:
    'Where events are POSTed. Must resolve to public addresses (private, loopback and link-local ones are refused unless the deployment allows them).',
});

const Events = t.Array(EventTypeName, {
  maxItems: EVENT_TYPE_NAMES.length,
  uniqueItems: true,
  description: 'Event types to receive. Empty or absent: every event that is not opt-in.',
});

/** A webhook endpoint as the API shows it: never its secret. */
export const WebhookEndpoint = t.Object(
  {
    id: t.String({ pattern: ENDPOINT_ID }),
    url: t.String(),
    events: t.Array(t.String()),
    description: t.String(),
    enabled: t.Boolean(),
    disabledReason: t.Union([t.String(), t.Null()], {
      description: 'Why the platform disabled it (it kept failing); null otherwise.',
    }),
    secretRotatedUntil: t.Union([t.String({ format: 'date-time' }), t.Null()], {
      description: 'While set, requests carry a second signature made with the previous secret, until then.',
    }),
    createdAt: t.String({ format: 'date-time' }),
    updatedAt: t.String({ format: 'date-time' }),
  },
  {
    examples: [
      {
        id: 'whk_01j9x6k3m2q8w5r7t4v0y1z3ab',
        url: 'https://crm.example.com/hooks/sipai',
        events: ['call.ended'],
        description: 'CRM sync',
        enabled: true,
        disabledReason: null,
        secretRotatedUntil: null,
        createdAt: '2026-01-05T09:30:00.000Z',
        updatedAt: '2026-01-05T09:30:00.000Z',
      },
    ],
  },
);

/** The responses that carry a secret: creation and rotation. */
export const WebhookEndpointWithSecret = t.Composite([
  WebhookEndpoint,
  t.Object({
    secret: t.String({
      description: 'The signing secret (`whsec_…`). Shown only in this response: store it now.',
    }),
  }),
]);

export const CreateWebhookBody = t.Object(
  {
    url: Url,
    events: t.Optional(Events),
    description: t.Optional(t.String({ maxLength: 500 })),
  },
  {
    additionalProperties: false,
    examples: [
      { url: 'https://crm.example.com/hooks/sipai', events: ['call.ended'], description: 'CRM sync' },
    ],
  },
);

export const UpdateWebhookBody = t.Object(
  {
    url: t.Optional(Url),
    events: t.Optional(Events),
    description: t.Optional(t.String({ maxLength: 500 })),
    enabled: t.Optional(
      t.Boolean({ description: 'Enabling clears `disabledReason` and the failure count.' }),
    ),
  },
  { additionalProperties: false, examples: [{ enabled: true }] },
);

export const RotateSecretBody = t.Object(
  {
    overlapSec: t.Optional(
      integer({
        minimum: 0,
        maximum: 7 * 86_400,
        description: 'How long the previous secret still signs alongside the new one. Default a day.',
      }),
    ),
  },
  { additionalProperties: false, examples: [{ overlapSec: 3600 }] },
);

export const DeliveryStatus = oneOf(['pending', 'delivered', 'failed'], {
  description: '`pending`: waiting for its next attempt; `failed`: gave up (replay to try again).',
});

/** One delivery of one event to one endpoint, with its last attempt. */
export const WebhookDelivery = t.Object(
  {
    id: t.String({ pattern: DELIVERY_ID }),
    endpointId: t.String(),
    eventId: t.String({ description: 'Also the `webhook-id` header of every attempt.' }),
    eventType: t.String(),
    status: DeliveryStatus,
    attempts: t.Integer(),
    nextAttemptAt: t.Union([t.String({ format: 'date-time' }), t.Null()]),
    lastAttemptAt: t.Union([t.String({ format: 'date-time' }), t.Null()]),
    lastStatus: t.Union([t.Integer(), t.Null()], {
      description: 'The receiver’s status code; null: no answer.',
    }),
    lastError: t.Union([t.String(), t.Null()]),
    deliveredAt: t.Union([t.String({ format: 'date-time' }), t.Null()]),
    createdAt: t.String({ format: 'date-time' }),
  },
  {
    examples: [
      {
        id: 'dlv_0123456789abcdef0123456789',
        endpointId: 'whk_01j9x6k3m2q8w5r7t4v0y1z3ab',
        eventId: 'evt_01j9x6k3m2q8w5r7t4v0y1z3ab',
        eventType: 'call.ended',
        status: 'delivered',
        attempts: 1,
        nextAttemptAt: null,
        lastAttemptAt: '2026-01-05T09:31:02.000Z',
        lastStatus: 204,
        lastError: null,
        deliveredAt: '2026-01-05T09:31:02.000Z',
        createdAt: '2026-01-05T09:31:02.000Z',
      },
    ],
  },
);

export const WebhookParams = t.Object({
  id: t.String({ pattern: ENDPOINT_ID, examples: ['whk_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
});
export const DeliveryParams = t.Object({
  id: t.String({ pattern: ENDPOINT_ID, examples: ['whk_01j9x6k3m2q8w5r7t4v0y1z3ab'] }),
  deliveryId: t.String({ pattern: DELIVERY_ID, examples: ['dlv_0123456789abcdef0123456789'] }),
});
export const WebhookListQuery = pageQuery(
  t.String({ pattern: ENDPOINT_ID, description: 'nextCursor of the previous page.' }),
);
export const DeliveryListQuery = t.Object(
  {
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Items per page.' })),
    cursor: t.Optional(
      t.String({ pattern: '^[A-Za-z0-9_-]{1,200}$', description: 'nextCursor of the previous page.' }),
    ),
    status: t.Optional(DeliveryStatus),
  },
  { additionalProperties: false },
);
export const WebhookPage = pageOf(WebhookEndpoint);
export const DeliveryPage = pageOf(WebhookDelivery);
export const DeletedWebhook = t.Object({ id: t.String({ pattern: ENDPOINT_ID }), deleted: t.Literal(true) });
export const ReplayedDeliveries = t.Object({
  replayed: t.Integer({ description: 'Failed deliveries set to be attempted again.' }),
});

export type WebhookEndpoint = (typeof WebhookEndpoint)['static'];
export type WebhookDelivery = (typeof WebhookDelivery)['static'];
export type CreateWebhookBody = (typeof CreateWebhookBody)['static'];
export type UpdateWebhookBody = (typeof UpdateWebhookBody)['static'];
