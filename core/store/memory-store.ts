import {
  type AcquireResult,
  type ClaimOptions,
  compareStreamIds,
  type LeaseClaim,
  type ReadGroupOptions,
  type Store,
  type StoreHealth,
  type StreamEntry,
  type Unsubscribe,
} from './store.ts';

interface Pending {
  consumer: string;
  deliveredAt: number;
  entry: StreamEntry;
}

interface Group {
  lastDelivered: string;
  pending: Map<string, Pending>;
}

interface Stream {
  /**
   * Entries from `head` on are the stream; those before it were trimmed and wait for the next
   * compaction. Trimming only moves `head`, so an append to a full stream costs O(1), not a
   * shift of every entry (see `dropOldest`).
   */
  entries: StreamEntry[];
  head: number;
  /** When the whole stream vanishes (`expire`); Infinity while it has no TTL. */
  expiresAt: number;
  lastMs: number;
  lastSeq: number;
  groups: Map<string, Group>;
  waiters: Set<() => void>;
}

interface KvValue {
  value: string;
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 30_000;

/** Options of a MemoryStore. */
export interface MemoryStoreOptions {
  /**
   * Wall clock in epoch ms behind every TTL, lease expiry, idle time and stream id (default
   * `Date.now`): tests inject one to make time the subject without waiting on it.
   */
  now?: () => number;
}

/** Trimmed entries are compacted away once there are at least this many, and as many as live ones. */
const COMPACT_MIN_TRIMMED = 1024;

/**
 * The Store in one process's memory: the embedded default for `npm start` and single-node
 * deployments. Same semantics as RedisStore (the contract suite holds both to them); expired
 * values are dropped lazily on access and by a periodic sweep so TTL'd keys never pile up.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly leases = new Map<string, Map<string, number>>();
  private readonly kv = new Map<string, KvValue>();
  private readonly streams = new Map<string, Stream>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  private closed = false;

  private readonly now: () => number;

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? (() => Date.now());
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref?.();
  }

  // ── leases ─────────────────────────────────────────────────────────────────────────

  private holders(key: string, now: number): Map<string, number> | undefined {
    const holders = this.leases.get(key);
    if (!holders) return undefined;
    for (const [holder, expiresAt] of holders) if (expiresAt <= now) holders.delete(holder);
    if (holders.size === 0) {
      this.leases.delete(key);
      return undefined;
    }
    return holders;
  }

  async acquire(claims: LeaseClaim[], holder: string, ttlMs: number): Promise<AcquireResult> {
    this.assertOpen();
    const now = this.now();
    for (const { key, limit } of claims) {
      // Expired holders only matter when the key looks full: prune then, not on every call.
      let holders = this.leases.get(key);
      if (holders?.has(holder) && holders.get(holder)! > now) continue;
      if (holders && holders.size >= limit) holders = this.holders(key, now);
      const count = holders?.size ?? 0;
      if (count >= limit) return { ok: false, key, count, limit };
    }
    const expiresAt = now + ttlMs;
    for (const { key } of claims) {
      let holders = this.leases.get(key);
      if (!holders) {
        holders = new Map();
        this.leases.set(key, holders);
      }
      holders.set(holder, expiresAt);
    }
    return { ok: true };
  }

  async renew(keys: string[], holder: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = this.now();
    let all = true;
    for (const key of keys) {
      const holders = this.holders(key, now);
      if (holders?.has(holder)) holders.set(holder, now + ttlMs);
      else all = false;
    }
    return all;
  }

  async release(keys: string[], holder: string): Promise<number> {
    this.assertOpen();
    const now = this.now();
    let released = 0;
    for (const key of keys) {
      const holders = this.holders(key, now);
      if (holders?.delete(holder)) {
        released++;
        if (holders.size === 0) this.leases.delete(key);
      }
    }
    return released;
  }

  async leaseCount(key: string): Promise<number> {
    this.assertOpen();
    return this.holders(key, this.now())?.size ?? 0;
  }

  // ── kv ─────────────────────────────────────────────────────────────────────────────

  private read(key: string): string | null {
    const v = this.kv.get(key);
    if (!v) return null;
    if (v.expiresAt <= this.now()) {
      this.kv.delete(key);
      return null;
    }
    return v.value;
  }

  async get(key: string): Promise<string | null> {
    this.assertOpen();
    return this.read(key);
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    this.assertOpen();
    return keys.map((k) => this.read(k));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.assertOpen();
    this.kv.set(key, {
      value,
      expiresAt: ttlMs === undefined ? Number.POSITIVE_INFINITY : this.now() + ttlMs,
    });
  }

  async del(key: string): Promise<boolean> {
    this.assertOpen();
    const existed = this.read(key) !== null;
    this.kv.delete(key);
    return existed;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    if (!Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a finite number, got ${ttlMs}`);
    const expiresAt = this.now() + ttlMs;
    let existed = false;
    const s = this.stream(key);
    if (s) {
      s.expiresAt = expiresAt;
      existed = true;
    }
    if (this.read(key) !== null) {
      this.kv.get(key)!.expiresAt = expiresAt;
      existed = true;
    }
    return existed;
  }

  // ── streams ────────────────────────────────────────────────────────────────────────

  private stream(name: string, create: true): Stream;
  private stream(name: string, create?: false): Stream | undefined;
  private stream(name: string, create = false): Stream | undefined {
    let s = this.streams.get(name);
    if (s && s.expiresAt <= this.now()) {
      this.dropStream(name, s);
      s = undefined;
    }
    if (!s && create) {
      s = {
        entries: [],
        head: 0,
        expiresAt: Number.POSITIVE_INFINITY,
        lastMs: 0,
        lastSeq: 0,
        groups: new Map(),
        waiters: new Set(),
      };
      this.streams.set(name, s);
    }
    return s;
  }

  /** Forgets an expired stream; a group read blocked on it returns empty. */
  private dropStream(name: string, s: Stream): void {
    this.streams.delete(name);
    for (const wake of s.waiters) wake();
    s.waiters.clear();
  }

  /**
   * Trims the `n` oldest entries by moving `head`; the array is compacted only once the
   * trimmed part is at least as long as the live one, so each append pays O(1) amortised.
   */
  private dropOldest(s: Stream, n: number): void {
    s.head += n;
    if (s.head >= COMPACT_MIN_TRIMMED && s.head * 2 >= s.entries.length) {
      s.entries = s.entries.slice(s.head);
      s.head = 0;
    }
  }

  async append(stream: string, fields: Record<string, string>, maxLen?: number): Promise<string> {
    this.assertOpen();
    const s = this.stream(stream, true);
    const now = this.now();
    if (now > s.lastMs) {
      s.lastMs = now;
      s.lastSeq = 0;
    } else {
      s.lastSeq++;
    }
    const id = `${s.lastMs}-${s.lastSeq}`;
    s.entries.push({ id, fields: { ...fields } });
    const length = s.entries.length - s.head;
    if (maxLen !== undefined && length > maxLen) this.dropOldest(s, length - maxLen);
    for (const wake of s.waiters) wake();
    s.waiters.clear();
    return id;
  }

  async range(stream: string, start = '-', end = '+', count?: number): Promise<StreamEntry[]> {
    this.assertOpen();
    const s = this.stream(stream);
    if (!s) return [];
    const from = start === '-' ? s.head : firstIndexAtOrAfter(s.entries, start, s.head);
    const out: StreamEntry[] = [];
    for (let i = from; i < s.entries.length; i++) {
      const e = s.entries[i]!;
      if (end !== '+' && compareStreamIds(e.id, end) > 0) break;
      out.push(copy(e));
      if (count !== undefined && out.length >= count) break;
    }
    return out;
  }

  async streamLength(stream: string): Promise<number> {
    this.assertOpen();
    const s = this.stream(stream);
    return s ? s.entries.length - s.head : 0;
  }

  async createGroup(stream: string, group: string, from: '0' | '$' = '0'): Promise<void> {
    this.assertOpen();
    const s = this.stream(stream, true);
    if (s.groups.has(group)) return;
    const lastDelivered = from === '$' ? `${s.lastMs}-${s.lastSeq}` : '0-0';
    s.groups.set(group, { lastDelivered, pending: new Map() });
  }

  async readGroup(
    stream: string,
    group: string,
    consumer: string,
    opts: ReadGroupOptions = {},
  ): Promise<StreamEntry[]> {
    this.assertOpen();
    const count = opts.count ?? 10;
    const s = this.stream(stream);
    const g = s?.groups.get(group);
    if (!s || !g) throw new Error(`NOGROUP no such stream or group: ${stream} ${group}`);
    let out = this.deliver(s, g, consumer, count);
    if (out.length === 0 && opts.blockMs && opts.blockMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, opts.blockMs);
        function done() {
          clearTimeout(timer);
          s!.waiters.delete(done);
          resolve();
        }
        s.waiters.add(done);
      });
      if (!this.closed) out = this.deliver(s, g, consumer, count);
    }
    return out;
  }

  private deliver(s: Stream, g: Group, consumer: string, count: number): StreamEntry[] {
    const out: StreamEntry[] = [];
    const now = this.now();
    for (
      let i = firstIndexAfter(s.entries, g.lastDelivered, s.head);
      i < s.entries.length && out.length < count;
      i++
    ) {
      const e = s.entries[i]!;
      g.pending.set(e.id, { consumer, deliveredAt: now, entry: e });
      g.lastDelivered = e.id;
      out.push(copy(e));
    }
    return out;
  }

  async ack(stream: string, group: string, ids: string[]): Promise<number> {
    this.assertOpen();
    const g = this.stream(stream)?.groups.get(group);
    if (!g) return 0;
    let n = 0;
    for (const id of ids) if (g.pending.delete(id)) n++;
    return n;
  }

  async claimIdle(
    stream: string,
    group: string,
    consumer: string,
    opts: ClaimOptions,
  ): Promise<StreamEntry[]> {
    this.assertOpen();
    const s = this.stream(stream);
    const g = s?.groups.get(group);
    if (!s || !g) throw new Error(`NOGROUP no such stream or group: ${stream} ${group}`);
    const count = opts.count ?? 10;
    const now = this.now();
    const oldest = s.entries[s.head]?.id;
    const ids = [...g.pending.keys()].sort(compareStreamIds);
    const out: StreamEntry[] = [];
    for (const id of ids) {
      if (out.length >= count) break;
      const p = g.pending.get(id)!;
      if (now - p.deliveredAt < opts.minIdleMs) continue;
      if (oldest === undefined || compareStreamIds(id, oldest) < 0) {
        // Trimmed away while pending: like XAUTOCLAIM, drop it from the pending list.
        g.pending.delete(id);
        continue;
      }
      p.consumer = consumer;
      p.deliveredAt = now;
      out.push(copy(p.entry));
    }
    return out;
  }

  async trim(stream: string, maxLen: number): Promise<number> {
    this.assertOpen();
    const s = this.stream(stream);
    const length = s ? s.entries.length - s.head : 0;
    if (!s || length <= maxLen) return 0;
    const dropped = length - maxLen;
    this.dropOldest(s, dropped);
    return dropped;
  }

  // ── pub/sub ────────────────────────────────────────────────────────────────────────

  async publish(channel: string, message: string): Promise<number> {
    this.assertOpen();
    const handlers = this.channels.get(channel);
    if (!handlers) return 0;
    for (const handler of handlers) queueMicrotask(() => handler(message));
    return handlers.size;
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<Unsubscribe> {
    this.assertOpen();
    let handlers = this.channels.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    // Wrap so the same function subscribed twice gets two independent subscriptions.
    const handler = (m: string) => onMessage(m);
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
      if (handlers.size === 0) this.channels.delete(channel);
    };
  }

  async health(): Promise<StoreHealth> {
    return this.closed
      ? { ok: false, kind: 'memory', error: 'closed' }
      : { ok: true, kind: 'memory', latencyMs: 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const s of this.streams.values()) for (const wake of s.waiters) wake();
    this.channels.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, v] of this.kv) if (v.expiresAt <= now) this.kv.delete(key);
    for (const [name, s] of this.streams) if (s.expiresAt <= now) this.dropStream(name, s);
    for (const key of this.leases.keys()) this.holders(key, now);
  }
}

function copy(e: StreamEntry): StreamEntry {
  return { id: e.id, fields: { ...e.fields } };
}

/** Index (at or after `from`) of the first entry with id >= `id` (entries are sorted by id). */
function firstIndexAtOrAfter(entries: StreamEntry[], id: string, from: number): number {
  let lo = from;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareStreamIds(entries[mid]!.id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index (at or after `from`) of the first entry with id > `id`. */
function firstIndexAfter(entries: StreamEntry[], id: string, from: number): number {
  let lo = from;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareStreamIds(entries[mid]!.id, id) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
