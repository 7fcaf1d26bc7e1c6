import { Elysia } from 'elysia';
import { type ApiKeyAuth, authErrors, bearerSecurity } from '../../auth/index.ts';
import { errorModels, errorResponses, type RouteErrors } from '../../errors.ts';
import { DEFAULT_PAGE_SIZE } from '../../pagination.ts';
import {
  Agent,
  AgentListQuery,
  AgentPage,
  AgentParams,
  CreateAgentBody,
  DeletedAgent,
  UpdateAgentBody,
  VersionListQuery,
  VersionPage,
} from './model.ts';
import type { AgentService } from './service.ts';

const detail = (summary: string, description?: string, errors?: RouteErrors) => ({
  summary,
  ...(description ? { description } : {}),
  tags: ['agents'],
  security: bearerSecurity,
  ...(errors ? { responses: errorResponses(errors) } : {}),
});

/** A rule across fields, checked after the schema (service.ts). */
const ENDPOINTING_RULE = {
  summary: 'A rule across fields',
  code: 'validation_failed',
  message: 'endpointing.maxMs: must not be less than endpointing.minMs',
  details: [{ field: 'endpointing.maxMs', message: 'must not be less than endpointing.minMs' }],
};

/** `/v1/agents`: CRUD over the calling account's agents, and their version history. */
export const agents = (auth: ApiKeyAuth, service: AgentService) =>
  new Elysia({ name: 'sipai/agents' })
    .use(errorModels)
    .use(auth)
    .get(
      '/agents',
      ({ principal, query }) =>
        service.list(principal.accountId, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        query: AgentListQuery,
        response: { 200: AgentPage, 422: 'Error', ...authErrors },
        detail: detail('List agents', 'Newest first, cursor-paginated.'),
      },
    )
    .post(
      '/agents',
      async ({ principal, body, set }) => {
        const agent = await service.create(principal.accountId, body);
        set.status = 201;
        return agent;
      },
      {
        body: CreateAgentBody,
        parse: 'json',
        response: { 201: Agent, 400: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Create an agent',
          'Only `name` is required. Unknown fields are rejected (422 naming the field). The agent is live for calls as soon as this returns. An agent this deployment cannot run as configured (an engine not installed, a key not set, a word the recogniser does not know) is still saved: `ready` is false and `warnings` names what is missing.',
          { 422: [ENDPOINTING_RULE] },
        ),
      },
    )
    .get('/agents/:id', ({ principal, params }) => service.get(principal.accountId, params.id), {
      params: AgentParams,
      response: { 200: Agent, 404: 'Error', ...authErrors },
      detail: detail(
        'Get an agent',
        'Its current configuration and version, with `ready` and `warnings` saying whether this deployment can run it as configured.',
      ),
    })
    .patch(
      '/agents/:id',
      ({ principal, params, body }) => service.update(principal.accountId, params.id, body),
      {
        params: AgentParams,
        body: UpdateAgentBody,
        parse: 'json',
        response: { 200: Agent, 400: 'Error', 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail(
          'Update an agent',
          'Fields given replace the stored ones (objects and arrays whole); `null` clears a field without a default. Each update is a new version.',
          { 422: [ENDPOINTING_RULE] },
        ),
      },
    )
    .delete('/agents/:id', ({ principal, params }) => service.delete(principal.accountId, params.id), {
      params: AgentParams,
      response: { 200: DeletedAgent, 404: 'Error', 409: 'Error', ...authErrors },
      detail: detail('Delete an agent', 'Refused with 409 while a number routes to it.', {
        409: [
          {
            summary: 'A number still routes to the agent',
            code: 'agent_in_use',
            message: 'numbers still route to agent agt_01j9x6k3m2q8w5r7t4v0y1z3ab; move or delete them first',
          },
        ],
      }),
    })
    .get(
      '/agents/:id/versions',
      ({ principal, params, query }) =>
        service.versions(principal.accountId, params.id, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor),
      {
        params: AgentParams,
        query: VersionListQuery,
        response: { 200: VersionPage, 404: 'Error', 422: 'Error', ...authErrors },
        detail: detail('List an agent’s versions', 'Newest first: every configuration the agent has had.'),
      },
    );

export { Agent, AgentConfig, type CreateAgentBody, type StoredAgent } from './model.ts';
export {
  AGENT_DEFAULTS,
  AgentRecordError,
  AgentService,
  agentStoreRecord,
  type ReadinessCheck,
  readinessWith,
} from './service.ts';
