/**
 * The one interface both planes use for shared state (docs/architecture.md, "The Store").
 * `MemoryStore` serves a single process (the embedded default); `RedisStore` serves many
 * nodes. Every behaviour below is pinned by `tests/core/store/store.contract.ts`, which runs
 * against both.
 */

/** One counted semaphore to take part of an all-or-nothing acquire. */
export interface LeaseClaim {
  /** Semaphore name, e.g. `global`, `campaign:c1`, `agent:a1`. */
  key: string;
  /** How many holders the semaphore admits at once. */
  limit: number;
}

export type AcquireResult =
  | { ok: true }
  /** `key` is the first claim that was full; nothing was taken. */
  | { ok: false; key: string; count: number; limit: number };

/** A stream entry: an id ordered like Redis stream ids (`<ms>-<seq>`) and flat string fields. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface ReadGroupOptions {
  /** At most this many entries. Default 10. */
  count?: number;
  /** Wait up to this long for new entries when none are ready. Default 0 (no wait). */
  blockMs?: number;
}

export interface ClaimOptions {
  /** Only entries delivered at least this long ago and not acked. */
  minIdleMs: number;
  /** At most this many entries. Default 10. */
  count?: number;
}

export type Unsubscribe = () => Promise<void>;

export interface StoreHealth {
  ok: boolean;
  kind: 'memory' | 'redis';
  latencyMs?: number;
  error?: string;
}

export interface Store {
  readonly kind: 'memory' | 'redis';

  // ── leases: counted semaphores with TTL ────────────────────────────────────────────
  /**
   * Takes one slot of every claim for `holder`, or none of them. A holder already present in
   * a semaphore keeps its slot (re-acquire is a renew). Expired holders do not count.
   */
  acquire(claims: LeaseClaim[], holder: string, ttlMs: number): Promise<AcquireResult>;
  /** Extends `holder`'s slots; returns false if any of them had already expired or gone. */
  renew(keys: string[], holder: string, ttlMs: number): Promise<boolean>;
  /** Frees `holder`'s slots; returns how many it actually held. Releasing twice is harmless. */
  release(keys: string[], holder: string): Promise<number>;
  /** Live holders of a semaphore now. */
  leaseCount(key: string): Promise<number>;

  // ── kv ─────────────────────────────────────────────────────────────────────────────
  get(key: string): Promise<string | null>;
  getMany(keys: string[]): Promise<(string | null)[]>;
  /** `ttlMs` makes the value vanish after that long; without it the value stays. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Returns whether the key existed. */
  del(key: string): Promise<boolean>;
  /**
   * Makes a kv value or a stream vanish `ttlMs` from now (zero or less: at once); returns
   * whether the key existed. A later plain `set` clears it, appends to a stream keep it (as in
   * Redis). It lets a finished call's own stream go once it is recorded, instead of forever.
   */
  expire(key: string, ttlMs: number): Promise<boolean>;

  // ── streams: append-only logs with consumer groups (at-least-once) ─────────────────
  /** Appends and returns the new id. `maxLen` trims the oldest entries past that length. */
  append(stream: string, fields: Record<string, string>, maxLen?: number): Promise<string>;
  /** Entries with `start <= id <= end` in order (`-` and `+` are the ends). */
  range(stream: string, start?: string, end?: string, count?: number): Promise<StreamEntry[]>;
  streamLength(stream: string): Promise<number>;
  /** Creates the group (idempotent). `from` is `0` (whole stream) or `$` (only new entries). */
  createGroup(stream: string, group: string, from?: '0' | '$'): Promise<void>;
  /** Delivers entries never delivered to this group before, marking them pending for `consumer`. */
  readGroup(stream: string, group: string, consumer: string, opts?: ReadGroupOptions): Promise<StreamEntry[]>;
  /** Marks entries done for the group; returns how many were pending. Acked entries never return. */
  ack(stream: string, group: string, ids: string[]): Promise<number>;
  /** Moves entries pending longer than `minIdleMs` to `consumer` and returns them. */
  claimIdle(stream: string, group: string, consumer: string, opts: ClaimOptions): Promise<StreamEntry[]>;
  /** Drops the oldest entries so at most `maxLen` remain; returns how many were dropped. */
  trim(stream: string, maxLen: number): Promise<number>;

  // ── pub/sub: live call commands to the owning node ─────────────────────────────────
  /** Returns how many subscribers received it (in Redis: across all nodes). */
  publish(channel: string, message: string): Promise<number>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<Unsubscribe>;

  health(): Promise<StoreHealth>;
  /** Frees connections and timers. The store is unusable afterwards. */
  close(): Promise<void>;
}

/** Parses a stream id into its two numbers; ids compare by (ms, seq). */
export function parseStreamId(id: string): [number, number] {
  const dash = id.indexOf('-');
  if (dash < 0) return [Number(id), 0];
  return [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
}

/** Negative when a < b, like Redis orders stream ids. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = parseStreamId(a);
  const [bm, bs] = parseStreamId(b);
  return am === bm ? as - bs : am - bm;
}
