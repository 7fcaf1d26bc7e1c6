import {
  type AgentRecord,
  DEFAULT_INTERRUPT_MIN_MS,
  parseAgentRecord,
  RECORD_DEFAULTS,
} from '../../../core/agent/config.ts';
import { agentReadiness, cachedChecks, type Readiness } from '../../../core/agent/readiness.ts';
import type { Store } from '../../../core/store/index.ts';
import { keys } from '../../../core/store/index.ts';
import { asJson, type Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import { isPgError, mirror, mirrorJson } from '../../store-mirror.ts';
import { enqueueAccountEvent, newEventId } from '../webhooks/outbox.ts';
import type {
  Agent,
  AgentConfig,
  AgentVersion,
  CreateAgentBody,
  StoredAgent,
  UpdateAgentBody,
} from './model.ts';

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

/**
 * What a new agent gets for the fields its creator left out: core's record defaults (one
 * source, so both planes agree on the brain and the timings), plus the barge-in threshold.
 */
export const AGENT_DEFAULTS = {
  brain: RECORD_DEFAULTS.brain,
  language: RECORD_DEFAULTS.language,
  tools: [],
  intents: [],
  endpointing: { ...RECORD_DEFAULTS.endpointing },
  bargeIn: RECORD_DEFAULTS.bargeIn,
  interruptMinMs: DEFAULT_INTERRUPT_MIN_MS,
} satisfies Partial<AgentConfig>;

/** A stored agent core cannot read: control wrote something its own schema let through. */
export class AgentRecordError extends Error {
  constructor(
    readonly agentId: string,
    readonly problem: string,
  ) {
    super(`agent ${agentId} does not make a valid core record (${problem})`);
    this.name = 'AgentRecordError';
  }
}

/**
 * What core reads at `agent:<id>`: core's `AgentRecord` (core/agent/config.ts), built field by
 * field from the API agent and validated with core's own parser, so a field the API accepts
 * cannot miss the brain unnoticed. A failure is a bug in control and throws.
 */
export function agentStoreRecord(agent: StoredAgent, accountId: string): AgentRecord {
  const record: AgentRecord = {
    id: agent.id,
    accountId,
    name: agent.name,
    version: agent.version,
    brain: agent.brain,
    language: agent.language,
    prompt: agent.prompt,
    greeting: agent.greeting,
    voice: agent.voice,
    stt: agent.stt,
    llm: agent.llm,
    tts: agent.tts,
    intents: agent.intents,
    tools: agent.tools,
    endpointing: agent.endpointing,
    bargeIn: agent.bargeIn,
    interruptMinMs: agent.interruptMinMs,
    transferTo: agent.transferTo,
    maxDurationSec: agent.maxDurationSec,
    maxConcurrentCalls: agent.maxConcurrentCalls,
    sampleRate: agent.sampleRate,
  };
  const parsed = parseAgentRecord(agent.id, record);
  if (!parsed.ok) throw new AgentRecordError(agent.id, parsed.error);
  return parsed.record;
}

/** Whether this deployment can run an agent; computed on every read. */
export type ReadinessCheck = (record: AgentRecord) => Readiness;

/** Readiness against this machine's engines (re-checked every 10 s) and the deployment's provider keys. */
export function readinessWith(env: Record<string, string | undefined>): ReadinessCheck {
  const checks = cachedChecks();
  return (record) => agentReadiness(record, env, checks);
}

function defaultReadiness(): ReadinessCheck {
  return readinessWith(process.env);
}

function toStored(row: AgentRow): StoredAgent {
  // Defaults first: a row saved before a defaulted field existed still reads complete.
  return {
    id: row.id,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    ...AGENT_DEFAULTS,
    ...row.config,
  };
}

/** Rules the schema cannot state; each failure names its field. */
function checkConfig(config: AgentConfig): void {
  if (config.endpointing.maxMs < config.endpointing.minMs) {
    throw invalidField('endpointing.maxMs', 'must not be less than endpointing.minMs');
  }
  for (const kind of ['stt', 'llm', 'tts'] as const) {
    const settings = config[kind];
    if (settings?.fallback !== undefined && settings.fallback === settings.provider) {
      throw invalidField(`${kind}.fallback`, `must differ from ${kind}.provider`);
    }
  }
  const digits = new Map<string, number>();
  config.intents.forEach((intent, i) => {
    if (intent.digit !== undefined) {
      const first = digits.get(intent.digit);
      if (first !== undefined) {
        throw invalidField(`intents.${i}.digit`, `digit "${intent.digit}" is already intents.${first}.digit`);
      }
      digits.set(intent.digit, i);
    }
    if (intent.action === 'transfer' && config.transferTo === undefined) {
      throw invalidField(`intents.${i}.action`, 'transfer needs transferTo to be set');
    }
  });
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
 * the agent into the Store (inside the transaction, so a Store failure saves nothing). Each
 * change writes its `agent.*` event to the webhook outbox in the same transaction.
 */
export class AgentService {
  constructor(
    private readonly sql: Sql,
    private readonly store: Store,
    /** Default: the engines installed here (re-checked every 10 s) and the keys in `process.env`. */
    private readonly readiness: ReadinessCheck = defaultReadiness(),
  ) {}

  /** The API representation: the stored agent, its settings again under `config`, and whether it can run here. */
  private present(agent: StoredAgent, accountId: string): Agent {
    const { ready, warnings } = this.readiness(agentStoreRecord(agent, accountId));
    const { id: _id, version: _version, createdAt: _c, updatedAt: _u, name: _name, ...config } = agent;
    return { ...agent, ready, warnings, config };
  }

  private toAgent(row: AgentRow): Agent {
    return this.present(toStored(row), row.account_id);
  }

  async create(accountId: string, body: CreateAgentBody): Promise<Agent> {
    const given = unnest(body);
    // A prompt is what the `llm` brain runs on: naming one without a brain means that brain.
    const brain = given.brain ?? (given.prompt !== undefined ? 'llm' : AGENT_DEFAULTS.brain);
    const config: AgentConfig = { ...AGENT_DEFAULTS, ...given, brain };
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
      const agent = toStored(row);
      await enqueueAccountEvent(tx, {
        id: newEventId(),
        accountId,
        type: 'agent.created',
        data: { agentId: id, name: agent.name, version: agent.version },
      });
      await mirrorJson(this.store, keys.agent(id), agentStoreRecord(agent, accountId));
      return this.present(agent, accountId);
    });
  }

  async get(accountId: string, id: string): Promise<Agent> {
    const [row] = await this.sql<
      AgentRow[]
    >`select * from agents where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('agent', id);
    return this.toAgent(row);
  }

  /** The id of the account's oldest agent named `name`, or null. */
  async findByName(accountId: string, name: string): Promise<string | null> {
    const [row] = await this.sql<{ id: string }[]>`
      select id from agents where account_id = ${accountId} and name = ${name}
      order by created_at, id limit 1`;
    return row?.id ?? null;
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<AgentRow[]>`
      select * from agents
      where account_id = ${accountId} ${cursor ? this.sql`and id < ${cursor}` : this.sql``}
      order by id desc
      limit ${limit + 1}`;
    return toPage(
      rows,
      limit,
      (r) => this.toAgent(r),
      (r) => r.id,
    );
  }

  /** Applies a partial update as a new version. */
  async update(accountId: string, id: string, patch: UpdateAgentBody): Promise<Agent> {
    return this.sql.begin(async (tx) => {
      const [current] = await tx<AgentRow[]>`
        select * from agents where id = ${id} and account_id = ${accountId} for update`;
      if (!current) throw notFound('agent', id);
      const changes = unnest(patch);
      if (Object.keys(changes).length === 0) throw invalidField('config', 'must set at least one field');
      const config = applyPatch({ ...AGENT_DEFAULTS, ...current.config }, changes);
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
      const agent = toStored(row);
      await enqueueAccountEvent(tx, {
        id: newEventId(),
        accountId,
        type: 'agent.updated',
        data: { agentId: id, name: agent.name, version: agent.version },
      });
      await mirrorJson(this.store, keys.agent(id), agentStoreRecord(agent, accountId));
      return this.present(agent, accountId);
    });
  }

  /** Deletes the agent and its versions; refused (409) while a number routes to it. */
  async delete(accountId: string, id: string): Promise<{ id: string; deleted: true }> {
    try {
      return await this.sql.begin(async (tx) => {
        const [row] = await tx<{ id: string; name: string }[]>`
          delete from agents where id = ${id} and account_id = ${accountId} returning id, name`;
        if (!row) throw notFound('agent', id);
        await enqueueAccountEvent(tx, {
          id: newEventId(),
          accountId,
          type: 'agent.deleted',
          data: { agentId: id, name: row.name },
        });
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
        config: { ...AGENT_DEFAULTS, ...r.config },
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
          this.store.set(keys.agent(r.id), JSON.stringify(agentStoreRecord(toStored(r), r.account_id))),
        ),
      );
      count += rows.length;
      after = rows[rows.length - 1].id;
    }
  }
}

/**
 * A body in either shape, flat: `{name, config: {…}}` becomes `{name, …}`. The two shapes are
 * exclusive, so a field given at both levels can never be resolved by a silent precedence.
 */
function unnest<B extends { name?: string; config?: object }>(body: B): Omit<B, 'config'> & B['config'] {
  const { config, ...flat } = body;
  if (config === undefined) return flat as never;
  const alsoFlat = Object.keys(flat).filter((k) => k !== 'name');
  if (alsoFlat.length > 0) {
    throw invalidField(
      'config',
      `give the agent's settings either nested in config or at the top level, not both (also at the top level: ${alsoFlat.join(', ')})`,
    );
  }
  return { ...flat, ...config } as never;
}

/**
 * A config with a PATCH applied: given fields replace, `null` removes a field without a default
 * (the request schema allows null nowhere else and no field it does not name).
 */
function applyPatch(config: AgentConfig, patch: UpdateAgentBody): AgentConfig {
  const out: AgentConfig = { ...config };
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(out, field);
    else if (value !== undefined) Reflect.set(out, field, value);
  }
  return out;
}
