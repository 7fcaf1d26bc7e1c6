import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels } from '../../errors.ts';
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

const detail = (summary: string, description?: string) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['numbers'],
  security: bearerSecurity,
});

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
        response: { 201: PhoneNumber, 400: 'Error', 409: 'Error', 422: 'Error', ...authErrors, 503: 'Error' },
        detail: detail(
          'Add a number',
          'Routes inbound calls on this number to the agent. 409 when the number is registered already (by any account); 422 when the agent is not in this account.',
        ),
      },
    )
    .get('/numbers/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: NumberParams,
      response: { 200: PhoneNumber, 404: 'Error', 422: 'Error', ...authErrors },
      detail: detail('Get a number'),
    })
    .patch(
      '/numbers/:id',
      ({ principal, params, body }) => service.update(principal.accountId, params.id, body),
      {
        params: NumberParams,
        body: UpdateNumberBody,
        parse: 'json',
        response: { 200: PhoneNumber, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors, 503: 'Error' },
        detail: detail(
          'Update a number',
          'Change its agent, provider or label; `label: null` clears the label.',
        ),
      },
    )
    .delete('/numbers/:id', ({ principal, params }) => service.delete(principal.accountId, params.id), {
      params: NumberParams,
      response: { 200: DeletedNumber, 404: 'Error', 422: 'Error', ...authErrors, 503: 'Error' },
      detail: detail('Delete a number', 'Inbound calls to it stop reaching the agent at once.'),
    });

export { PhoneNumber } from './model.ts';
export { type NumberRoute, NumberService } from './service.ts';
