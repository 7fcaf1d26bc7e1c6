import { checkSignature, type SignatureRejection } from '../../../core/auth/standard-webhooks.ts';
import type { Logger } from '../../../core/observability/index.ts';
import type { Sql } from '../../db/index.ts';
import { ApiError, invalidField, notFound } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { toPage } from '../../pagination.ts';
import type { OutboundDialing } from '../calls/outbound.ts';
import type { CallService } from '../calls/service.ts';
import type { CampaignService } from '../campaigns/service.ts';
import { generateWebhookSecret } from '../webhooks/service.ts';
import type {
  CreateTriggerBody,
  FireTriggerBody,
  Trigger,
  TriggerAction,
  TriggerFired,
  UpdateTriggerBody,
} from './model.ts';

interface TriggerRow {
  id: string;
  account_id: string;
  name: string;
  action: TriggerAction;
  agent_id: string | null;
  from_number: string | null;
  provider: 'jambonz' | 'twilio' | null;
  campaign_id: string | null;
  enabled: boolean;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  last_fired_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** How far a request's `webhook-timestamp` may be from now, either way (Standard Webhooks' 5 minutes). */
export const TRIGGER_TOLERANCE_SEC = 300;

/**
 * How long an accepted `webhook-id` is remembered: past the tolerance window (a replay of the
 * exact request is stale by then), and long enough that a sender retrying a request whose answer
 * it lost is refused rather than starting a second call.
 */
export const TRIGGER_MESSAGE_RETENTION_SEC = 86_400;

/** A previous secret is still accepted this long after a rotation unless the request says otherwise. */
export const DEFAULT_TRIGGER_OVERLAP_SEC = 86_400;

/** Triggers an account may have. */
export const MAX_TRIGGERS_PER_ACCOUNT = 100;

/** Largest request body a trigger reads. */
export const TRIGGER_MAX_BODY_BYTES = 64 * 1024;

/** The path a trigger is fired at, under the deployment's public base URL. */
export const triggerPath = (id: string) => `/webhooks/triggers/${id}`;

const ACTION_FIELDS: Record<TriggerAction, readonly (keyof CreateTriggerBody)[]> = {
  call: ['agentId', 'from', 'provider'],
  campaign_contact: ['campaignId'],
};

const REJECTIONS: Record<SignatureRejection | 'replayed', { code: string; message: string }> = {
  missing: {
    code: 'signature_missing',
    message:
      'sign the request with the trigger’s secret: webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks)',
  },
  stale: {
    code: 'signature_stale',
    message: `webhook-timestamp is more than ${TRIGGER_TOLERANCE_SEC} s away from the server’s clock; sign the request when sending it`,
  },
  invalid: {
    code: 'signature_invalid',
    message: 'webhook-signature does not match the body signed with the trigger’s secret',
  },
  replayed: {
    code: 'replayed',
    message: 'a request with this webhook-id was already accepted; send each request with a new id',
  },
};

/** 401 for a request whose signature does not admit it; nothing was started. */
export function refused(reason: SignatureRejection | 'replayed'): ApiError {
  const { code, message } = REJECTIONS[reason];
  return new ApiError(401, code, message);
}

/**
 * Inbound triggers of an account: CRUD, secret rotation, and firing one: a request signed with
 * the trigger's secret (Standard Webhooks, checked here with the tolerance and the replay rule)
 * places a call through the calls service or adds a contact through the campaigns service.
 */
export class TriggerService {
  constructor(
    private readonly sql: Sql,
    private readonly deps: {
      calls: CallService;
      campaigns: CampaignService;
      outbound: OutboundDialing;
      log: Logger;
      /** The deployment's public base URL: where triggers are fired at. */
      publicBaseUrl: string;
      /** The clock signatures' timestamps are checked against (ms). */
      now?: () => number;
    },
  ) {}

  private nowMs(): number {
    return (this.deps.now ?? Date.now)();
  }

  private toTrigger(row: TriggerRow): Trigger {
    const overlapping =
      row.previous_secret &&
      row.previous_secret_expires_at &&
      row.previous_secret_expires_at.getTime() > this.nowMs();
    return {
      id: row.id,
      name: row.name,
      action: row.action,
      agentId: row.agent_id,
      from: row.from_number,
      provider: row.provider,
      campaignId: row.campaign_id,
      enabled: row.enabled,
      url: `${this.deps.publicBaseUrl}${triggerPath(row.id)}`,
      secretRotatedUntil: overlapping ? row.previous_secret_expires_at!.toISOString() : null,
      lastFiredAt: row.last_fired_at?.toISOString() ?? null,
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
    };
  }

  /**
   * The action's own fields must all be there, the other action's none; the agent and the
   * campaign must be the account's, the provider configured. Every failure names its field.
   */
  private async checkFields(
    accountId: string,
    action: TriggerAction,
    fields: Partial<Pick<CreateTriggerBody, 'agentId' | 'from' | 'provider' | 'campaignId'>>,
    requireAll = true,
  ): Promise<void> {
    for (const [other, names] of Object.entries(ACTION_FIELDS)) {
      if (other === action) continue;
      for (const name of names) {
        if (fields[name as keyof typeof fields] !== undefined)
          throw invalidField(name, `only ${other} triggers take ${name}; this one is a ${action} trigger`);
      }
    }
    for (const name of requireAll ? ACTION_FIELDS[action] : []) {
      if (fields[name as keyof typeof fields] === undefined)
        throw invalidField(name, `is required for a ${action} trigger`);
    }
    if (fields.agentId) {
      const [agent] = await this.sql`
        select 1 from agents where id = ${fields.agentId} and account_id = ${accountId}`;
      if (!agent) throw invalidField('agentId', `no agent ${fields.agentId} in this account`);
    }
    if (fields.provider) {
      const missing = this.deps.outbound.missingSettings(fields.provider);
      if (missing)
        throw invalidField(
          'provider',
          `${fields.provider} is not configured on this deployment (set ${missing.join(', ')})`,
        );
    }
    if (fields.campaignId) {
      const [campaign] = await this.sql`
        select 1 from campaigns where id = ${fields.campaignId} and account_id = ${accountId}`;
      if (!campaign) throw invalidField('campaignId', `no campaign ${fields.campaignId} in this account`);
    }
  }

  private async row(accountId: string, id: string): Promise<TriggerRow> {
    const [row] = await this.sql<TriggerRow[]>`
      select * from triggers where id = ${id} and account_id = ${accountId}`;
    if (!row) throw notFound('trigger', id);
    return row;
  }

  /** Creates a trigger; the response is the only one that carries its secret. */
  async create(accountId: string, body: CreateTriggerBody): Promise<Trigger & { secret: string }> {
    const { name, action, enabled, ...fields } = body;
    await this.checkFields(accountId, action, fields);
    const [{ n }] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from triggers where account_id = ${accountId}`;
    if (n >= MAX_TRIGGERS_PER_ACCOUNT)
      throw new ApiError(
        409,
        'too_many_triggers',
        `an account may have ${MAX_TRIGGERS_PER_ACCOUNT} triggers`,
      );
    const secret = generateWebhookSecret();
    const [row] = await this.sql<TriggerRow[]>`
      insert into triggers (id, account_id, name, action, agent_id, from_number, provider, campaign_id,
                            enabled, secret)
      values (${newId('trg')}, ${accountId}, ${name}, ${action}, ${fields.agentId ?? null},
              ${fields.from ?? null}, ${fields.provider ?? null}, ${fields.campaignId ?? null},
              ${enabled ?? true}, ${secret})
      returning *`;
    return { ...this.toTrigger(row!), secret };
  }

  async list(accountId: string, limit: number, cursor?: string) {
    const rows = await this.sql<TriggerRow[]>`
      select * from triggers
      where account_id = ${accountId} ${cursor ? this.sql`and id < ${cursor}` : this.sql``}
      order by id desc
      limit ${limit + 1}`;
    return toPage(
      rows,
      limit,
      (r) => this.toTrigger(r),
      (r) => r.id,
    );
  }

  async get(accountId: string, id: string): Promise<Trigger> {
    return this.toTrigger(await this.row(accountId, id));
  }

  /** Changes the fields given; the action stays what it was created as. */
  async update(accountId: string, id: string, body: UpdateTriggerBody): Promise<Trigger> {
    const current = await this.row(accountId, id);
    const { name, enabled, ...fields } = body;
    if (Object.keys(body).length === 0) throw invalidField('(body)', 'must set at least one field');
    // The stored settings were checked when saved: only the ones given are checked now.
    await this.checkFields(accountId, current.action, fields, false);
    const [row] = await this.sql<TriggerRow[]>`
      update triggers set
        name = coalesce(${name ?? null}, name),
        agent_id = coalesce(${fields.agentId ?? null}, agent_id),
        from_number = coalesce(${fields.from ?? null}, from_number),
        provider = coalesce(${fields.provider ?? null}, provider),
        campaign_id = coalesce(${fields.campaignId ?? null}, campaign_id),
        enabled = coalesce(${enabled ?? null}::boolean, enabled),
        updated_at = now()
      where id = ${id} and account_id = ${accountId}
      returning *`;
    if (!row) throw notFound('trigger', id);
    return this.toTrigger(row);
  }

  async delete(accountId: string, id: string): Promise<{ id: string; deleted: true }> {
    const rows = await this
      .sql`delete from triggers where id = ${id} and account_id = ${accountId} returning id`;
    if (rows.length === 0) throw notFound('trigger', id);
    return { id, deleted: true };
  }

  /**
   * A new secret; requests signed with the previous one are still accepted for `overlapSec`, so
   * the sender can switch without a refused request. The response is the only one carrying it.
   */
  async rotateSecret(
    accountId: string,
    id: string,
    overlapSec = DEFAULT_TRIGGER_OVERLAP_SEC,
  ): Promise<Trigger & { secret: string }> {
    const secret = generateWebhookSecret();
    const until = new Date(this.nowMs() + overlapSec * 1000);
    const [row] = await this.sql<TriggerRow[]>`
      update triggers set previous_secret = secret, previous_secret_expires_at = ${until},
        secret = ${secret}, updated_at = now()
      where id = ${id} and account_id = ${accountId}
      returning *`;
    if (!row) throw notFound('trigger', id);
    return { ...this.toTrigger(row), secret };
  }

  /**
   * Verifies a request to the trigger: the signature with its secret (or the previous one while
   * it overlaps), the timestamp within {@link TRIGGER_TOLERANCE_SEC}. Throws 404 for an unknown
   * trigger and 401 naming what is wrong; returns the trigger and the request's `webhook-id`.
   */
  async authenticate(
    id: string,
    headers: { get(name: string): string | null },
    body: string,
  ): Promise<{ trigger: TriggerRow; messageId: string; timestampSec: number }> {
    const [trigger] = await this.sql<TriggerRow[]>`select * from triggers where id = ${id}`;
    if (!trigger) throw notFound('trigger', id);
    const nowMs = this.nowMs();
    const secrets = [trigger.secret];
    if (trigger.previous_secret && (trigger.previous_secret_expires_at?.getTime() ?? 0) > nowMs)
      secrets.push(trigger.previous_secret);
    const check = checkSignature(secrets, headers, body, {
      toleranceSec: TRIGGER_TOLERANCE_SEC,
      nowSec: Math.floor(nowMs / 1000),
    });
    if (!check.ok) {
      this.deps.log.info({ triggerId: id, reason: check.reason }, 'trigger request refused');
      throw refused(check.reason);
    }
    return { trigger, messageId: check.id, timestampSec: check.timestampSec };
  }

  /**
   * Starts what the trigger does for an authenticated request. The request's `webhook-id` is
   * claimed first (in Postgres, so every control node sees it): a second request with it is a
   * replay (401) and starts nothing. When the action fails (a limit full, the provider refusing),
   * the id is given back, so the sender's retry of the same message can still succeed.
   */
  async fire(trigger: TriggerRow, messageId: string, body: FireTriggerBody): Promise<TriggerFired> {
    if (!trigger.enabled)
      throw new ApiError(403, 'trigger_disabled', `trigger ${trigger.id} is disabled; enable it to use it`);
    const nowMs = this.nowMs();
    await this.sql`delete from trigger_messages where expires_at < ${new Date(nowMs)}`;
    const claimed = await this.sql`
      insert into trigger_messages (trigger_id, message_id, received_at, expires_at)
      values (${trigger.id}, ${messageId}, ${new Date(nowMs)},
              ${new Date(nowMs + TRIGGER_MESSAGE_RETENTION_SEC * 1000)})
      on conflict do nothing
      returning message_id`;
    if (claimed.length === 0) {
      this.deps.log.info({ triggerId: trigger.id, reason: 'replayed' }, 'trigger request refused');
      throw refused('replayed');
    }
    try {
      const fired = await this.act(trigger, messageId, body);
      await this.sql`update triggers set last_fired_at = ${new Date(nowMs)} where id = ${trigger.id}`;
      this.deps.log.info(
        { triggerId: trigger.id, action: trigger.action, callId: fired.call?.id },
        'trigger fired',
      );
      return fired;
    } catch (err) {
      await this.sql`
        delete from trigger_messages where trigger_id = ${trigger.id} and message_id = ${messageId}`;
      throw err;
    }
  }

  private async act(trigger: TriggerRow, messageId: string, body: FireTriggerBody): Promise<TriggerFired> {
    const base = { triggerId: trigger.id, messageId, action: trigger.action };
    const variables = body.variables ?? {};
    if (trigger.action === 'call') {
      try {
        const call = await this.deps.calls.create(
          trigger.account_id,
          {
            agentId: trigger.agent_id!,
            from: trigger.from_number!,
            provider: trigger.provider!,
            to: body.to,
          },
          { variables },
        );
        return { ...base, call, contact: null };
      } catch (err) {
        throw misconfigured(trigger, err);
      }
    }
    const campaignId = trigger.campaign_id!;
    const contact = { phoneNumber: body.to, ...(body.variables ? { variables } : {}) };
    try {
      await this.deps.campaigns.addContacts(trigger.account_id, campaignId, [contact]);
    } catch (err) {
      // The one contact is the request's `to`: name the field the sender sent.
      if (
        err instanceof ApiError &&
        err.code === 'validation_failed' &&
        /^contacts\.0\.phoneNumber/.test(err.message)
      )
        throw invalidField('to', `${body.to} is already a contact of campaign ${campaignId}`);
      throw misconfigured(trigger, err);
    }
    const [row] = await this.sql<{ seq: number }[]>`
      select seq from campaign_contacts where campaign_id = ${campaignId} and phone_number = ${body.to}`;
    return { ...base, call: null, contact: { campaignId, seq: row!.seq, phoneNumber: body.to } };
  }
}

/**
 * A 422 about the trigger's own settings (its agent deleted since, say) or a 404 of its campaign
 * is the trigger's fault, not the sender's: 409 `trigger_misconfigured` saying which setting.
 */
function misconfigured(trigger: { id: string }, err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  const field = (err.details as { field?: string }[] | undefined)?.[0]?.field;
  if ((err.status === 422 && field && field !== 'to') || (err.status === 404 && err.code === 'not_found'))
    return new ApiError(409, 'trigger_misconfigured', `trigger ${trigger.id}: ${err.message}`, {
      field: field ?? null,
    });
  return err;
}
