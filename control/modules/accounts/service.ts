import type { Queryable } from '../../db/index.ts';
import { notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { Account } from './model.ts';

interface AccountRow {
  id: string;
  name: string;
  created_at: Date;
}

function toAccount(row: AccountRow): Account {
  return { id: row.id, name: row.name, createdAt: row.created_at.toISOString() };
}

/** Accounts: the tenancy root. Created by the bootstrap (and, later, by an operator API). */
export class AccountService {
  constructor(private readonly sql: Queryable) {}

  async create(name: string, db: Queryable = this.sql): Promise<Account> {
    const [row] = await db<AccountRow[]>`
      insert into accounts (id, name) values (${newId('acc')}, ${name}) returning *`;
    return toAccount(row);
  }

  async get(accountId: string): Promise<Account> {
    const [row] = await this.sql<AccountRow[]>`select * from accounts where id = ${accountId}`;
    if (!row) throw notFound('account', accountId);
    return toAccount(row);
  }
}
