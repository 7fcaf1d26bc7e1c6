import { capacityRefusals } from '../observability/cloudwatch-emf.ts';
import type { LeaseClaim, Store } from '../store/index.ts';

/** The three limits a call is counted against; they come from TELEPHONY_* settings. */
export interface CapacityLimits {
  /** Calls at once across the whole deployment (TELEPHONY_GLOBAL_MAX_CONCURRENCY). */
  globalMax: number;
  /** Calls at once per campaign unless `admit` names another (TELEPHONY_PER_CAMPAIGN_MAX_CONCURRENCY). */
  perCampaignMax: number;
  /** How long a slot lives without renewal (TELEPHONY_SEMAPHORE_TTL_SEC × 1000). */
  ttlMs: number;
}

/** Which semaphores one call competes for, besides the global one. */
export interface AdmitOptions {
  agentId?: string;
  /** The agent's own concurrency limit; without it the agent is not limited. */
  agentMax?: number;
  campaignId?: string;
  /** Overrides `perCampaignMax` for this campaign. */
  campaignMax?: number;
  /** For calls the API originates (outbound, campaigns): their cap across the deployment. */
  originatedMax?: number;
}

export type CapacityScope = 'global' | 'campaign' | 'agent' | 'originated';

export type AdmitResult = { ok: true } | { ok: false; scope: CapacityScope; count: number; limit: number };

export interface Usage {
  count: number;
  limit: number;
}

/** What `GET /telephony/capacity` shows. Agent limits live with the agent, so they are optional. */
export interface CapacityCounts {
  global: Usage;
  campaigns: Record<string, Usage>;
  agents: Record<string, { count: number; limit: number | null }>;
}

/** An id, or an id with its own limit (a campaign's override, an agent's `agentMax`). */
export type CountTarget = string | { id: string; max?: number };

export interface CountsQuery {
  campaigns?: readonly CountTarget[];
  agents?: readonly CountTarget[];
}

/** What the Store keeps per admitted call, so any node can renew or release it. */
interface LeaseRecord {
  keys: string[];
}

/** The call record outlives its slots by this much (capped), so renew/release always find it. */
const MAX_RECORD_GRACE_MS = 60_000;

export const GLOBAL_KEY = 'global';
/** Calls the API originated (TELEPHONY_OUTBOUND_MAX_CONCURRENCY). */
export const ORIGINATED_KEY = 'originated';
export const campaignKey = (campaignId: string) => `campaign:${campaignId}`;
export const agentKey = (agentId: string) => `agent:${agentId}`;
export const leaseRecordKey = (callId: string) => `lease:${callId}`;

/**
 * Concurrency leases for calls (docs/architecture.md, "A call, end to end", steps 1 and 5): one slot
 * of `global`, of `campaign:<id>` and of `agent:<id>` per live call, held by the call id and
 * taken all-or-nothing. Which slots a call holds is written to the Store, so the node that
 * renews or releases a call need not be the one that admitted it. Slots not renewed lapse after
 * `ttlMs`, so a crashed node's calls free their capacity by themselves.
 */
export class CallCapacity {
  private readonly recordTtlMs: number;

  constructor(
    private readonly store: Store,
    readonly limits: CapacityLimits,
  ) {
    assertCount('globalMax', limits.globalMax);
    assertCount('perCampaignMax', limits.perCampaignMax);
    if (!Number.isFinite(limits.ttlMs) || limits.ttlMs <= 0) {
      throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${limits.ttlMs}`);
    }
    this.recordTtlMs = limits.ttlMs + Math.min(MAX_RECORD_GRACE_MS, limits.ttlMs);
  }

  /**
   * Takes a slot of every limit the call falls under, or none. Admitting a call id that already
   * holds its slots renews them (the Store treats re-acquire by the same holder as a renew).
   */
  async admit(callId: string, opts: AdmitOptions = {}): Promise<AdmitResult> {
    assertId('callId', callId);
    const claims: (LeaseClaim & { scope: CapacityScope })[] = [
      { key: GLOBAL_KEY, limit: this.limits.globalMax, scope: 'global' },
    ];
    if (opts.campaignId !== undefined) {
      assertId('campaignId', opts.campaignId);
      const limit = opts.campaignMax ?? this.limits.perCampaignMax;
      assertCount('campaignMax', limit);
      claims.push({ key: campaignKey(opts.campaignId), limit, scope: 'campaign' });
    }
    if (opts.originatedMax !== undefined) {
      assertCount('originatedMax', opts.originatedMax);
      claims.push({ key: ORIGINATED_KEY, limit: opts.originatedMax, scope: 'originated' });
    }
    if (opts.agentMax !== undefined) {
      if (opts.agentId === undefined) throw new TypeError('agentMax needs an agentId');
      assertId('agentId', opts.agentId);
      assertCount('agentMax', opts.agentMax);
      claims.push({ key: agentKey(opts.agentId), limit: opts.agentMax, scope: 'agent' });
    }
    // The record goes first. If a release races this admit and deletes it before the acquire
    // lands, renew() then finds no record and fails, so those orphaned slots lapse within one
    // TTL. A re-admit keeps the keys the call already holds in its record.
    const recordKey = leaseRecordKey(callId);
    const previous = await this.readRecord(callId);
    const keys = [...new Set([...(previous?.keys ?? []), ...claims.map((c) => c.key)])];
    await this.store.set(recordKey, JSON.stringify({ keys } satisfies LeaseRecord), this.recordTtlMs);
    const restore = () =>
      previous
        ? this.store.set(recordKey, JSON.stringify(previous), this.recordTtlMs)
        : this.store.del(recordKey).then(() => undefined);
    let result: Awaited<ReturnType<Store['acquire']>>;
    try {
      result = await this.store.acquire(
        claims.map(({ key, limit }) => ({ key, limit })),
        callId,
        this.limits.ttlMs,
      );
    } catch (err) {
      await restore().catch(() => {});
      throw err;
    }
    if (result.ok) return { ok: true };
    await restore();
    capacityRefusals.total += 1;
    const failed = claims.find((c) => c.key === result.key);
    return { ok: false, scope: failed?.scope ?? 'global', count: result.count, limit: result.limit };
  }

  /**
   * Extends every slot the call holds. False when the call holds nothing any more (released,
   * or lapsed); if only some of its slots lapsed, the rest are freed too, so a call is always
   * either fully counted or not at all.
   */
  async renew(callId: string): Promise<boolean> {
    const record = await this.readRecord(callId);
    if (!record) return false;
    const held = await this.store.renew(record.keys, callId, this.limits.ttlMs);
    if (!held) {
      await this.release(callId);
      return false;
    }
    await this.store.set(leaseRecordKey(callId), JSON.stringify(record), this.recordTtlMs);
    return true;
  }

  /**
   * Frees the call's slots. Safe to call from every end path at once (status callback, stream
   * stop, socket close, timeout, error) and from several nodes: the Store's release is atomic,
   * so exactly one caller gets true; the others, and calls after expiry, get false.
   */
  async release(callId: string): Promise<boolean> {
    const record = await this.readRecord(callId);
    if (!record) return false;
    const released = await this.store.release(record.keys, callId);
    await this.store.del(leaseRecordKey(callId));
    return released > 0;
  }

  /** Live counts for `GET /telephony/capacity`: global, and the campaigns and agents asked for. */
  async counts(query: CountsQuery = {}): Promise<CapacityCounts> {
    const campaigns = (query.campaigns ?? []).map(target);
    const agents = (query.agents ?? []).map(target);
    const [global, campaignCounts, agentCounts] = await Promise.all([
      this.store.leaseCount(GLOBAL_KEY),
      Promise.all(campaigns.map((c) => this.store.leaseCount(campaignKey(c.id)))),
      Promise.all(agents.map((a) => this.store.leaseCount(agentKey(a.id)))),
    ]);
    const out: CapacityCounts = {
      global: { count: global, limit: this.limits.globalMax },
      campaigns: {},
      agents: {},
    };
    campaigns.forEach((c, i) => {
      out.campaigns[c.id] = { count: campaignCounts[i]!, limit: c.max ?? this.limits.perCampaignMax };
    });
    agents.forEach((a, i) => {
      out.agents[a.id] = { count: agentCounts[i]!, limit: a.max ?? null };
    });
    return out;
  }

  private async readRecord(callId: string): Promise<LeaseRecord | null> {
    const raw = await this.store.get(leaseRecordKey(callId));
    if (raw === null) return null;
    try {
      const parsed = JSON.parse(raw) as Partial<LeaseRecord>;
      if (Array.isArray(parsed.keys) && parsed.keys.every((k) => typeof k === 'string')) {
        return { keys: parsed.keys };
      }
    } catch {
      // fall through: a record we cannot read holds nothing we can name
    }
    return null;
  }
}

function target(t: CountTarget): { id: string; max?: number } {
  return typeof t === 'string' ? { id: t } : t;
}

function assertCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a whole number >= 0, got ${value}`);
  }
}

function assertId(name: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`${name} must be a non-empty string`);
}
