import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels, errorResponses, type RouteErrors } from '../../errors.ts';
import { DEFAULT_PAGE_SIZE } from '../../pagination.ts';
import {
  CreateNumberBody,
  DeletedNumber,
  NumberListQuery,
  NumberPage,
  NumberParams,
  PhoneNumber,
  UpdateNumberBody,
} from './model.ts';
import type { NumberService } from './service.ts';

const detail = (summary: string, description?: string, errors?: RouteErrors) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['numbers'],
  security: bearerSecurity,
  ...(errors ? { responses: errorResponses(errors) } : {}),
});

/** 422 for an agent id of the right format that is not in the caller's account. */
const AGENT_ELSEWHERE = {
  summary: 'The agent is not in this account',
  code: 'validation_failed',
  message: 'agentId: no agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab in this account',
  details: [{ field: 'agentId', message: 'no agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab in this account' }],
};

/** `/v1/numbers`: the calling account's phone numbers and the agent each routes to. */
export const numbers = (auth: ApiKeyAuth, service: NumberService) =>
  new Elysia({ name: 'sipai/numbers' })
    .use(errorModels)
    .use(auth)
    .get(
      '/numbers',
      ({ principal, query }) =>
        service.list(principal.accountId, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        query: NumberListQuery,
        response: { 200: NumberPage, 422: 'Error', ...authErrors },
        detail: detail('List numbers', 'Newest first, cursor-paginated.'),
      },
    )
    .post(
      '/numbers',
      async ({ principal, body, set }) => {
        const number = await service.create(principal.accountId, body);
        set.status = 201;
        return number;
      },
      {
        body: CreateNumberBody,
        parse: 'json',
        response: { 201: PhoneNumber, 400: 'Error', 409: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Add a number',
          'Routes inbound calls on this number to the agent. 409 when the number is registered already (by any account); 422 when the agent is not in this account.',
          {
            409: [
              {
                summary: 'The number is registered already',
                code: 'number_taken',
                message: '+14155550123 is already registered',
              },
            ],
            422: [AGENT_ELSEWHERE],
          },
        ),
      },
    )
    .get('/numbers/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: NumberParams,
      response: { 200: PhoneNumber, 404: 'Error', ...authErrors },
      detail: detail('Get a number', 'The number, its provider and the agent its inbound calls reach.'),
    })
    .patch(
      '/numbers/:id',
      ({ principal, params, body }) => service.update(principal.accountId, params.id, body),
      {
        params: NumberParams,
        body: UpdateNumberBody,
        parse: 'json',
        response: { 200: PhoneNumber, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Update a number',
          'Change its agent, provider or label; `label: null` clears the label.',
          { 422: [AGENT_ELSEWHERE] },
        ),
      },
    )
    .delete('/numbers/:id', ({ principal, params }) => service.delete(principal.accountId, params.id), {
      params: NumberParams,
      response: { 200: DeletedNumber, 404: 'Error', ...authErrors },
      detail: detail('Delete a number', 'Inbound calls to it stop reaching the agent at once.'),
    });

export { PhoneNumber } from './model.ts';
export { type NumberRoute, NumberService } from './service.ts';
