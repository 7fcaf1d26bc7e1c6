import type { Store } from '../../../core/store/index.ts';
import { keys } from '../../../core/store/index.ts';
import { asJson, type Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import { isPgError, mirror, mirrorJson } from '../../store-mirror.ts';
import type { Agent, AgentConfig, AgentVersion, CreateAgentBody, UpdateAgentBody } from './model.ts';

interface AgentRow {
  id: string;
  account_id: string;
  config: AgentConfig;
  version: number;
  created_at: Date;
  updated_at: Date;
}

interface VersionRow {
  agent_id: string;
  version: number;
  config: AgentConfig;
  created_at: Date;
}

/** What a new agent gets for the fields its creator left out. */
export const AGENT_DEFAULTS = {
  brain: 'scripted',
  language: 'en-US',
  tools: [],
  intents: [],
  endpointing: { minMs: 500, maxMs: 3000 },
  bargeIn: true,
} as const satisfies Partial<AgentConfig>;

/**
 * What core reads at `agent:<id>`: the whole config, the owning account, and the fields of
 * core's `AgentConfig` (core/agent/agent.ts) under the names core uses (`endpointingMs` is the
 * end-of-turn silence, `endpointing.minMs` here).
 */
export function agentStoreRecord(agent: Agent, accountId: string) {
  return { ...agent, accountId, endpointingMs: agent.endpointing.minMs };
}

function toAgent(row: AgentRow): Agent {
  return {
    id: row.id,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    ...row.config,
  };
}

/** Rules the schema cannot state; each failure names its field. */
function checkConfig(config: AgentConfig): void {
  if (config.endpointing.maxMs < config.endpointing.minMs) {
    throw invalidField('endpointing.maxMs', 'must not be less than endpointing.minMs');
  }
  for (const list of ['tools', 'intents'] as const) {
    const seen = new Set<string>();
    config[list].forEach((item, i) => {
      if (seen.has(item.name)) throw invalidField(`${list}.${i}.name`, `duplicate name "${item.name}"`);
      seen.add(item.name);
    });
  }
}

/**
 * Agents: Postgres is the truth, every saved config is a new version, and each write mirrors
 * the agent into the Store (inside the transaction, so a Store failure saves nothing).
 */
export class AgentService {
  constructor(
    private readonly sql: Sql,
    private readonly store: Store,
  ) {}

  async create(accountId: string, body: CreateAgentBody): Promise<Agent> {
    const config: AgentConfig = { ...AGENT_DEFAULTS, ...body } as AgentConfig;
    checkConfig(config);
    const id = newId('agt');
    return this.sql.begin(async (tx) => {
      const [row] = await tx<AgentRow[]>`
        insert into agents (id, account_id, name, config)
        values (${id}, ${accountId}, ${config.name}, ${tx.json(asJson(config))})
        returning *`;
      await tx`
        insert into agent_versions (agent_id, version, account_id, config)
        values (${id}, 1, ${accountId}, ${tx.json(asJson(config))})`;
      const agent = toAgent(row);
      await mirrorJson(this.store, keys.agent(id), agentStoreRecord(agent, accountId));
      return agent;
    });
  }

  async get(accountId: string, id: string): Promise<Agent> {
    const [row] = await this.sql<
      AgentRow[]
    >`select * from agents where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('agent', id);
    return toAgent(row);
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<AgentRow[]>`
      select * from agents
      where account_id = ${accountId} ${cursor ? this.sql`and id < ${cursor}` : this.sql``}
      order by id desc
      limit ${limit + 1}`;
    return toPage(rows, limit, toAgent, (r) => r.id);
  }

  /** Applies a partial update as a new version. */
  async update(accountId: string, id: string, patch: UpdateAgentBody): Promise<Agent> {
    return this.sql.begin(async (tx) => {
      const [current] = await tx<AgentRow[]>`
        select * from agents where id = ${id} and account_id = ${accountId} for update`;
      if (!current) throw notFound('agent', id);
      const merged: Record<string, unknown> = { ...current.config };
      for (const [field, value] of Object.entries(patch)) {
        if (value === null) delete merged[field];
        else if (value !== undefined) merged[field] = value;
      }
      const config = merged as AgentConfig;
      checkConfig(config);
      const [row] = await tx<AgentRow[]>`
        update agents
        set name = ${config.name}, config = ${tx.json(asJson(config))},
            version = version + 1, updated_at = now()
        where id = ${id}
        returning *`;
      await tx`
        insert into agent_versions (agent_id, version, account_id, config)
        values (${id}, ${row.version}, ${accountId}, ${tx.json(asJson(config))})`;
      const agent = toAgent(row);
      await mirrorJson(this.store, keys.agent(id), agentStoreRecord(agent, accountId));
      return agent;
    });
  }

  /** Deletes the agent and its versions; refused (409) while a number routes to it. */
  async delete(accountId: string, id: string): Promise<{ id: string; deleted: true }> {
    try {
      return await this.sql.begin(async (tx) => {
        const [row] = await tx<{ id: string }[]>`
          delete from agents where id = ${id} and account_id = ${accountId} returning id`;
        if (!row) throw notFound('agent', id);
        await mirror(() => this.store.del(keys.agent(id)));
        return { id, deleted: true as const };
      });
    } catch (err) {
      if (isPgError(err, '23503')) {
        throw new ApiError(
          409,
          'agent_in_use',
          `numbers still route to agent ${id}; move or delete them first`,
        );
      }
      throw err;
    }
  }

  async versions(accountId: string, id: string, limit: number, cursor?: string) {
    await this.get(accountId, id);
    const rows = await this.sql<VersionRow[]>`
      select agent_id, version, config, created_at from agent_versions
      where agent_id = ${id} and account_id = ${accountId}
        ${cursor ? this.sql`and version < ${Number(cursor)}` : this.sql``}
      order by version desc
      limit ${limit + 1}`;
    return toPage(
      rows,
      limit,
      (r): AgentVersion => ({
        agentId: r.agent_id,
        version: r.version,
        createdAt: r.created_at.toISOString(),
        config: r.config,
      }),
      (r) => String(r.version),
    );
  }

  /** Writes every agent into the Store (a fresh MemoryStore, a flushed Redis); returns the count. */
  async mirrorAll(batchSize = 500): Promise<number> {
    let count = 0;
    let after = '';
    for (;;) {
      const rows = await this.sql<AgentRow[]>`
        select * from agents where id > ${after} order by id limit ${batchSize}`;
      if (rows.length === 0) return count;
      await Promise.all(
        rows.map((r) =>
          this.store.set(keys.agent(r.id), JSON.stringify(agentStoreRecord(toAgent(r), r.account_id))),
        ),
      );
      count += rows.length;
      after = rows[rows.length - 1].id;
    }
  }
}
