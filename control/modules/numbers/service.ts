import type { Store } from '../../../core/store/index.ts';
import { keys } from '../../../core/store/index.ts';
import type { Queryable, Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import { isPgError, mirror, mirrorJson } from '../../store-mirror.ts';
import type { CreateNumberBody, NumberProvider, PhoneNumber, UpdateNumberBody } from './model.ts';

interface NumberRow {
  id: string;
  account_id: string;
  phone_number: string;
  provider: NumberProvider;
  agent_id: string;
  label: string | null;
  created_at: Date;
  updated_at: Date;
}

/** What core reads at `number:<e164>` to route an inbound call. */
export interface NumberRoute {
  agentId: string;
  accountId: string;
  provider: NumberProvider;
  numberId: string;
}

function toNumber(row: NumberRow): PhoneNumber {
  return {
    id: row.id,
    phoneNumber: row.phone_number,
    provider: row.provider,
    agentId: row.agent_id,
    label: row.label,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function routeOf(row: NumberRow): NumberRoute {
  return { agentId: row.agent_id, accountId: row.account_id, provider: row.provider, numberId: row.id };
}

/** Phone numbers → agents, per provider; each write mirrors the route into the Store. */
export class NumberService {
  constructor(
    private readonly sql: Sql,
    private readonly store: Store,
  ) {}

  /** 422 on `agentId` unless the agent exists in this account (another account's looks absent). */
  private async assertAgent(db: Queryable, accountId: string, agentId: string): Promise<void> {
    const [agent] = await db`select 1 from agents where id = ${agentId} and account_id = ${accountId}`;
    if (!agent) throw invalidField('agentId', `no agent ${agentId} in this account`);
  }

  async create(accountId: string, body: CreateNumberBody): Promise<PhoneNumber> {
    try {
      return await this.sql.begin(async (tx) => {
        await this.assertAgent(tx, accountId, body.agentId);
        const [row] = await tx<NumberRow[]>`
          insert into numbers (id, account_id, phone_number, provider, agent_id, label)
          values (${newId('num')}, ${accountId}, ${body.phoneNumber}, ${body.provider}, ${body.agentId},
                  ${body.label ?? null})
          returning *`;
        await mirrorJson(this.store, keys.numberRoute(row.phone_number), routeOf(row));
        return toNumber(row);
      });
    } catch (err) {
      if (isPgError(err, '23505')) {
        throw new ApiError(409, 'number_taken', `${body.phoneNumber} is already registered`);
      }
      throw err;
    }
  }

  async get(accountId: string, id: string): Promise<PhoneNumber> {
    const [row] = await this.sql<
      NumberRow[]
    >`select * from numbers where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('number', id);
    return toNumber(row);
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<NumberRow[]>`
      select * from numbers
      where account_id = ${accountId} ${cursor ? this.sql`and id < ${cursor}` : this.sql``}
      order by id desc
      limit ${limit + 1}`;
    return toPage(rows, limit, toNumber, (r) => r.id);
  }

  async update(accountId: string, id: string, patch: UpdateNumberBody): Promise<PhoneNumber> {
    return this.sql.begin(async (tx) => {
      const [current] = await tx<NumberRow[]>`
        select * from numbers where id = ${id} and account_id = ${accountId} for update`;
      if (!current) throw notFound('number', id);
      if (patch.agentId !== undefined) await this.assertAgent(tx, accountId, patch.agentId);
      const [row] = await tx<NumberRow[]>`
        update numbers
        set provider = ${patch.provider ?? current.provider},
            agent_id = ${patch.agentId ?? current.agent_id},
            label = ${patch.label === undefined ? current.label : patch.label},
            updated_at = now()
        where id = ${id}
        returning *`;
      await mirrorJson(this.store, keys.numberRoute(row.phone_number), routeOf(row));
      return toNumber(row);
    });
  }

  async delete(accountId: string, id: string): Promise<{ id: string; deleted: true }> {
    return this.sql.begin(async (tx) => {
      const [row] = await tx<NumberRow[]>`
        delete from numbers where id = ${id} and account_id = ${accountId} returning *`;
      if (!row) throw notFound('number', id);
      await mirror(() => this.store.del(keys.numberRoute(row.phone_number)));
      return { id, deleted: true as const };
    });
  }

  /** Writes every number route into the Store; returns the count. */
  async mirrorAll(batchSize = 500): Promise<number> {
    let count = 0;
    let after = '';
    for (;;) {
      const rows = await this.sql<NumberRow[]>`
        select * from numbers where id > ${after} order by id limit ${batchSize}`;
      if (rows.length === 0) return count;
      await Promise.all(
        rows.map((r) => this.store.set(keys.numberRoute(r.phone_number), JSON.stringify(routeOf(r)))),
      );
      count += rows.length;
      after = rows[rows.length - 1].id;
    }
  }
}
