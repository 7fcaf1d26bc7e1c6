import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { ApiError, errorModels, errorResponses, type RouteErrors } from '../../errors.ts';
import { DEFAULT_PAGE_SIZE } from '../../pagination.ts';
import { E164 } from '../numbers/model.ts';
import { contactsFromCsv } from './csv.ts';
import {
  AddContactsBody,
  AddedContacts,
  Campaign,
  type CampaignAction,
  CampaignListQuery,
  CampaignPage,
  CampaignParams,
  ContactListQuery,
  ContactPage,
  CreateCampaignBody,
  MAX_CONTACTS_PER_REQUEST,
} from './model.ts';
import type { CampaignService } from './service.ts';

const detail = (summary: string, description?: string, errors?: RouteErrors) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['campaigns'],
  security: bearerSecurity,
  ...(errors ? { responses: errorResponses(errors) } : {}),
});

const e164 = new RegExp(E164);

/** Largest CSV upload read (10 000 contacts with a few variables fit well inside). */
const MAX_CSV_BYTES = 4 * 1024 * 1024;

/**
 * Body parser of the contacts upload: `text/csv` becomes `{ contacts: [...] }` (so the JSON
 * schema validates both); anything else falls through to the JSON parser.
 */
async function csvContacts({ request }: { request: Request }, contentType: string) {
  if (!contentType.startsWith('text/csv')) return;
  const text = await request.text();
  if (text.length > MAX_CSV_BYTES) {
    throw new ApiError(413, 'payload_too_large', `CSV uploads are limited to ${MAX_CSV_BYTES} bytes`);
  }
  const contacts = contactsFromCsv(text, e164);
  if (contacts.length > MAX_CONTACTS_PER_REQUEST) {
    throw new ApiError(
      413,
      'payload_too_large',
      `at most ${MAX_CONTACTS_PER_REQUEST} contacts per upload; got ${contacts.length}`,
    );
  }
  if (contacts.length === 0) throw new ApiError(422, 'validation_failed', 'CSV has a header but no contacts');
  return { contacts };
}

/** 409 for a move the campaign's state does not allow. */
const invalidState = (action: CampaignAction, status: string) => ({
  summary: `The campaign is ${status}`,
  code: 'invalid_state',
  message: `cannot ${action} a campaign that is ${status}`,
  details: { status, action },
});

/** 503 for a campaign whose provider has no credentials on this deployment. */
const PROVIDER_NOT_CONFIGURED = {
  summary: 'The campaign’s provider has no credentials here',
  code: 'provider_not_configured',
  message:
    'outbound calls through twilio are not configured on this deployment: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN',
  details: { provider: 'twilio', missing: ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'] },
};

/** Each action's own errors. */
const ACTION_ERRORS: Record<CampaignAction, RouteErrors> = {
  start: {
    409: [
      invalidState('start', 'running'),
      {
        summary: 'The campaign has no contacts',
        code: 'no_contacts',
        message: 'campaign cmp_01j9x6k3m2q8w5r7t4v0y1z3ab has no contacts to call',
      },
    ],
    503: [PROVIDER_NOT_CONFIGURED],
  },
  pause: { 409: [invalidState('pause', 'draft')] },
  resume: { 409: [invalidState('resume', 'running')], 503: [PROVIDER_NOT_CONFIGURED] },
  cancel: { 409: [invalidState('cancel', 'completed')] },
};

const ACTION_DOCS: Record<CampaignAction, [summary: string, description: string]> = {
  start: [
    'Start a campaign',
    'draft → running: the campaign runner starts dialling inside the schedule window, at the pacing and concurrency set. 409 `no_contacts` without contacts; 503 when its provider is not configured.',
  ],
  pause: ['Pause a campaign', 'running → paused: no new dials; calls in progress go on.'],
  resume: [
    'Resume a campaign',
    'paused → running: dialling picks up where it stopped, inside the schedule window. 503 when its provider is not configured.',
  ],
  cancel: [
    'Cancel a campaign',
    'Contacts not yet dialled become `canceled`; calls in progress go on. Final.',
  ],
};

/** The route options of `POST /v1/campaigns/{id}/<action>`. */
const actionRoute = (action: CampaignAction) => ({
  params: CampaignParams,
  response: { 200: Campaign, 404: 'Error', 409: 'Error', ...authErrors } as const,
  detail: detail(...ACTION_DOCS[action], ACTION_ERRORS[action]),
});

/** `/v1/campaigns`: outbound campaigns of the account, their contacts, and their state. */
export const campaigns = (auth: ApiKeyAuth, service: CampaignService) =>
  new Elysia({ name: 'sipai/campaigns' })
    .use(errorModels)
    .use(auth)
    .get(
      '/campaigns',
      ({ principal, query }) =>
        service.list(principal.accountId, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        query: CampaignListQuery,
        response: { 200: CampaignPage, 422: 'Error', ...authErrors },
        detail: detail('List campaigns', 'Newest first, cursor-paginated, each with its progress counts.'),
      },
    )
    .post(
      '/campaigns',
      async ({ principal, body, set }) => {
        const campaign = await service.create(principal.accountId, body);
        set.status = 201;
        return campaign;
      },
      {
        body: CreateCampaignBody,
        parse: 'json',
        response: { 201: Campaign, 400: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Create a campaign',
          'A draft: settings and, optionally, contacts (more can be added as JSON or CSV with `POST /v1/campaigns/{id}/contacts`). Nothing is dialled until it is started.',
        ),
      },
    )
    .get('/campaigns/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: CampaignParams,
      response: { 200: Campaign, 404: 'Error', ...authErrors },
      detail: detail('Get a campaign', 'With its progress counts.'),
    })
    .post(
      '/campaigns/:id/contacts',
      ({ principal, params, body }) => service.addContacts(principal.accountId, params.id, body.contacts),
      {
        params: CampaignParams,
        body: AddContactsBody,
        parse: [csvContacts, 'json'],
        response: {
          200: AddedContacts,
          400: 'Error',
          404: 'Error',
          409: 'Error',
          413: 'Error',
          422: 'Error',
          ...authErrors,
        },
        detail: detail(
          'Add contacts',
          'JSON `{ "contacts": [...] }`, or a CSV upload (`Content-Type: text/csv`): a header row with a phone column (`phone_number`, `phoneNumber`, `phone`, `number` or `to`); every other column becomes a variable. Numbers must be unique within the campaign. Up to 10 000 contacts per request.',
          {
            409: [
              {
                summary: 'The campaign has ended',
                code: 'invalid_state',
                message:
                  'campaign cmp_01j9x6k3m2q8w5r7t4v0y1z3ab is completed; contacts can no longer be added',
                details: { status: 'completed' },
              },
              {
                summary: 'A contact with one of these numbers was added meanwhile',
                code: 'duplicate_contact',
                message: 'a contact with one of these numbers was added meanwhile',
              },
            ],
            413: [
              {
                summary: 'A CSV upload over its limit',
                code: 'payload_too_large',
                message: `CSV uploads are limited to ${MAX_CSV_BYTES} bytes`,
              },
            ],
            422: [
              {
                summary: 'A number listed twice',
                code: 'validation_failed',
                message: 'contacts.1.phoneNumber: +14155550123 is listed twice (also contacts.0)',
                details: [
                  {
                    field: 'contacts.1.phoneNumber',
                    message: '+14155550123 is listed twice (also contacts.0)',
                  },
                ],
              },
            ],
          },
        ),
      },
    )
    .get(
      '/campaigns/:id/contacts',
      ({ principal, params, query }) => service.contacts(principal.accountId, params.id, query),
      {
        params: CampaignParams,
        query: ContactListQuery,
        response: { 200: ContactPage, 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail('List a campaign’s contacts', 'In list order, with attempts and the latest outcome.'),
      },
    )
    .post(
      '/campaigns/:id/start',
      ({ principal, params }) => service.transition(principal.accountId, params.id, 'start'),
      actionRoute('start'),
    )
    .post(
      '/campaigns/:id/pause',
      ({ principal, params }) => service.transition(principal.accountId, params.id, 'pause'),
      actionRoute('pause'),
    )
    .post(
      '/campaigns/:id/resume',
      ({ principal, params }) => service.transition(principal.accountId, params.id, 'resume'),
      actionRoute('resume'),
    )
    .post(
      '/campaigns/:id/cancel',
      ({ principal, params }) => service.transition(principal.accountId, params.id, 'cancel'),
      actionRoute('cancel'),
    );

export { Campaign } from './model.ts';
export { inWindow } from './schedule.ts';
export { type CallOutcome, type CampaignRow, CampaignService, type ContactRow } from './service.ts';
