import { Redis, type RedisOptions } from 'ioredis';
import type {
  AcquireResult,
  ClaimOptions,
  LeaseClaim,
  ReadGroupOptions,
  Store,
  StoreHealth,
  StreamEntry,
  Unsubscribe,
} from './store.ts';

/**
 * Lease semaphores are sorted sets: member = holder, score = expiry (ms, Redis server clock).
 * Each script prunes expired holders first, so a crashed node's slots return after their TTL
 * with no sweeper. All keys of one call share the `{lease}` hash tag, so a multi-key acquire
 * stays atomic on a cluster too.
 */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const ACQUIRE = `${NOW_MS}
local holder = ARGV[1]
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, holder) then
    local count = redis.call('ZCARD', key)
    if count >= tonumber(ARGV[i + 2]) then return {i, count} end
  end
end
local exp = now + ttl
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, exp, holder)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, tonumber(last[2]) + 1000)
end
return {0, 0}`;

const RENEW = `${NOW_MS}
local holder = ARGV[1]
local exp = now + tonumber(ARGV[2])
local all = 1
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZSCORE', key, holder) then
    redis.call('ZADD', key, exp, holder)
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', key, tonumber(last[2]) + 1000)
  else
    all = 0
  end
end
return all`;

const RELEASE = `${NOW_MS}
local n = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  n = n + redis.call('ZREM', key, ARGV[1])
end
return n`;

const COUNT = `${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

type RawEntry = [string, string[]] | null;

interface LeaseCommands {
  leaseAcquire(...args: (string | number)[]): Promise<[number, number]>;
  leaseRenew(...args: (string | number)[]): Promise<number>;
  leaseRelease(...args: (string | number)[]): Promise<number>;
  leaseCount(key: string): Promise<number>;
}

export interface RedisStoreOptions {
  /** Prepended to every key and channel, so several deployments or tests can share a server. */
  prefix?: string;
  /**
   * Longest a command may wait for its reply before it fails with {@link StoreUnavailableError}.
   * Default {@link DEFAULT_COMMAND_TIMEOUT_MS}. Blocking group reads wait their `blockMs` on top.
   */
  commandTimeoutMs?: number;
  redis?: RedisOptions;
}

/** Redis answers in well under a millisecond; a second without a reply is an outage. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;

/**
 * How late a command's timer may fire before the wait counts as an event-loop stall rather than
 * a silent Redis: the reply may already be in the socket, unread because the loop was busy, so
 * it gets one more turn of this long before the command is called failed.
 */
const STALL_GRACE_MS = 50;

/**
 * The Store could not be reached (refused, cut, or no reply within the command timeout): the
 * outage callers degrade on (refuse calls politely, buffer, answer 503), unlike a bug.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** ioredis's words for "not connected" and "no reply in time", as opposed to a Redis error reply. */
const UNAVAILABLE_MESSAGES = [
  "Stream isn't writeable",
  'Command timed out',
  'Connection is closed',
  'Reached the max retries per request limit',
  'connect ECONNREFUSED',
  'read ECONNRESET',
  'write EPIPE',
];

function unavailable(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof StoreUnavailableError) return err;
  const message = err.message;
  if (err.name === 'MaxRetriesPerRequestError' || UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) {
    return new StoreUnavailableError(`store unavailable: ${message}`, { cause: err });
  }
  return err;
}

/**
 * Connection settings for an outage that must degrade fast and queue nothing: a command fails
 * at once while disconnected (no offline queue that grows and replays stale writes later), an
 * in-flight one is never resent after a reconnect (its caller was already told it failed), and
 * every reply is awaited at most `commandTimeoutMs`.
 */
function outageOptions(commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    // Replies are awaited at most `commandTimeoutMs` by RedisStore.run (which tells a stalled event
    // loop from a silent server); ioredis's own timer would fail a reply that sits unread in the
    // socket while the loop was busy.
    commandTimeout: undefined,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    // A connection that stops answering (a partition: no RST, no FIN) is dropped and dialled
    // again by RedisStore.run, not by ioredis's socketTimeout: that timer, too, fires after a
    // stalled loop with the data sitting unread, and cuts every command in flight.
    socketTimeout: undefined,
    // A partitioned server would otherwise hold a connection attempt 10 s.
    connectTimeout: Math.max(commandTimeoutMs, 2_000),
  };
}

/**
 * The Store on Redis (ioredis): what production runs, shared by every core and control node.
 * Leases are Lua scripts (atomic, never overshooting under races); streams are Redis Streams
 * with consumer groups; pub/sub uses a dedicated subscriber connection, and blocking group
 * reads borrow connections of their own so they never stall other commands.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: Redis & LeaseCommands;
  private readonly prefix: string;
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private readonly idleBlockers: Redis[] = [];
  private readonly blockers = new Set<Redis>();
  private readonly commandTimeoutMs: number;
  /** When the main connection last answered anything (performance.now() ms). */
  private lastReplyAt = performance.now();

  private constructor(redis: Redis, prefix: string, commandTimeoutMs: number) {
    this.redis = redis as Redis & LeaseCommands;
    this.prefix = prefix;
    this.commandTimeoutMs = commandTimeoutMs;
    redis.defineCommand('leaseAcquire', { lua: ACQUIRE });
    redis.defineCommand('leaseRenew', { lua: RENEW });
    redis.defineCommand('leaseRelease', { lua: RELEASE });
    redis.defineCommand('leaseCount', { lua: COUNT, numberOfKeys: 1 });
  }

  /** Connects and waits until the server answers, so a bad URL fails at boot. */
  static async connect(url: string, opts: RedisStoreOptions = {}): Promise<RedisStore> {
    const commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const redis = new Redis(url, { ...outageOptions(commandTimeoutMs), ...opts.redis });
    redis.on('error', () => {
      // ioredis reconnects by itself; health() reports the outage. Without a listener Node
      // would treat the emitted error as unhandled.
    });
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    return new RedisStore(redis, opts.prefix ?? 'sipai:', commandTimeoutMs);
  }

  /**
   * Runs one Store call, turning "Redis is not there" into {@link StoreUnavailableError}: a
   * refused or cut connection, or no reply within `timeoutMs` (null: the call bounds itself).
   */
  private run<T>(call: () => Promise<T>, timeoutMs: number | null = this.commandTimeoutMs): Promise<T> {
    let reply: Promise<T>;
    try {
      reply = call();
    } catch (err) {
      return Promise.reject(unavailable(err));
    }
    if (timeoutMs === null) return reply.catch((err: unknown) => Promise.reject(unavailable(err)));
    return new Promise<T>((resolve, reject) => {
      const started = performance.now();
      let settled = false;
      let graced = false;
      const expire = () => {
        if (settled) return;
        // A timer this late means the loop stalled, not necessarily Redis: one more short turn
        // lets a reply that arrived meanwhile be read first.
        if (!graced && performance.now() - started - timeoutMs > STALL_GRACE_MS) {
          graced = true;
          timer = setTimeout(expire, STALL_GRACE_MS);
          return;
        }
        settled = true;
        this.dropIfSilent(2 * timeoutMs);
        reject(new StoreUnavailableError(`store unavailable: no reply within ${timeoutMs} ms`));
      };
      let timer = setTimeout(expire, timeoutMs);
      reply.then(
        (value) => {
          this.lastReplyAt = performance.now();
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          const failure = unavailable(err);
          // An error reply is still a reply: the connection is alive.
          if (!(failure instanceof StoreUnavailableError)) this.lastReplyAt = performance.now();
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(failure);
        },
      );
    });
  }

  /**
   * A partition (no RST, no FIN) leaves a connection open and silent: once nothing has come back
   * on it for `silentMs`, it is dropped and ioredis dials again. Commands in flight on it fail
   * (their callers were already told, or will be) and are never resent.
   */
  private dropIfSilent(silentMs: number): void {
    if (this.redis.status !== 'ready' || performance.now() - this.lastReplyAt < silentMs) return;
    this.redis.disconnect(true);
  }

  /**
   * Another connection with the same settings, connected before use: with no offline queue a
   * command on a connection still connecting would fail.
   */
  private async connectedDuplicate(overrides: RedisOptions = {}): Promise<Redis> {
    const conn = this.redis.duplicate({ lazyConnect: true, ...overrides });
    conn.on('error', () => {});
    try {
      await this.run(() => conn.connect());
    } catch (err) {
      conn.disconnect();
      throw err;
    }
    return conn;
  }

  private leaseKey(key: string): string {
    return `${this.prefix}{lease}:${key}`;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  // ── leases ─────────────────────────────────────────────────────────────────────────

  async acquire(claims: LeaseClaim[], holder: string, ttlMs: number): Promise<AcquireResult> {
    if (claims.length === 0) return { ok: true };
    const keys = claims.map((c) => this.leaseKey(c.key));
    const limits = claims.map((c) => c.limit);
    const [failed, count] = await this.run(() =>
      this.redis.leaseAcquire(keys.length, ...keys, holder, ttlMs, ...limits),
    );
    if (failed === 0) return { ok: true };
    const claim = claims[failed - 1]!;
    return { ok: false, key: claim.key, count, limit: claim.limit };
  }

  async renew(keys: string[], holder: string, ttlMs: number): Promise<boolean> {
    if (keys.length === 0) return true;
    const full = keys.map((k) => this.leaseKey(k));
    return (await this.run(() => this.redis.leaseRenew(full.length, ...full, holder, ttlMs))) === 1;
  }

  async release(keys: string[], holder: string): Promise<number> {
    if (keys.length === 0) return 0;
    const full = keys.map((k) => this.leaseKey(k));
    return this.run(() => this.redis.leaseRelease(full.length, ...full, holder));
  }

  async leaseCount(key: string): Promise<number> {
    return this.run(() => this.redis.leaseCount(this.leaseKey(key)));
  }

  // ── kv ─────────────────────────────────────────────────────────────────────────────

  async get(key: string): Promise<string | null> {
    return this.run(() => this.redis.get(this.k(key)));
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    return this.run(() => this.redis.mget(keys.map((k) => this.k(k))));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.run(() =>
      ttlMs === undefined
        ? this.redis.set(this.k(key), value)
        : this.redis.set(this.k(key), value, 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
  }

  async del(key: string): Promise<boolean> {
    return (await this.run(() => this.redis.del(this.k(key)))) > 0;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs);
    return (await this.run(() => this.redis.pexpire(this.k(key), Math.ceil(ttlMs)))) === 1;
  }

  // ── streams ────────────────────────────────────────────────────────────────────────

  async append(stream: string, fields: Record<string, string>, maxLen?: number): Promise<string> {
    const args: string[] = [];
    for (const name in fields) args.push(name, fields[name]!);
    const key = this.k(stream);
    const id = await this.run(() =>
      maxLen === undefined
        ? this.redis.xadd(key, '*', ...args)
        : this.redis.xadd(key, 'MAXLEN', maxLen, '*', ...args),
    );
    return id as string;
  }

  async range(stream: string, start = '-', end = '+', count?: number): Promise<StreamEntry[]> {
    const raw = await this.run(() =>
      count === undefined
        ? this.redis.xrange(this.k(stream), start, end)
        : this.redis.xrange(this.k(stream), start, end, 'COUNT', count),
    );
    return raw.map(toEntry);
  }

  async streamLength(stream: string): Promise<number> {
    return this.run(() => this.redis.xlen(this.k(stream)));
  }

  async createGroup(stream: string, group: string, from: '0' | '$' = '0'): Promise<void> {
    try {
      await this.run(() => this.redis.xgroup('CREATE', this.k(stream), group, from, 'MKSTREAM'));
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
  }

  async readGroup(
    stream: string,
    group: string,
    consumer: string,
    opts: ReadGroupOptions = {},
  ): Promise<StreamEntry[]> {
    const count = opts.count ?? 10;
    const key = this.k(stream);
    if (!opts.blockMs) {
      const res = (await this.run(() =>
        this.redis.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', key, '>'),
      )) as [string, RawEntry[]][] | null;
      return entriesOf(res);
    }
    const conn = this.idleBlockers.pop() ?? (await this.newBlocker());
    try {
      const res = (await this.run(
        () =>
          conn.xreadgroup(
            'GROUP',
            group,
            consumer,
            'COUNT',
            count,
            'BLOCK',
            opts.blockMs!,
            'STREAMS',
            key,
            '>',
          ),
        // The blocking connection's own grace bounds it (see newBlocker).
        null,
      )) as [string, RawEntry[]][] | null;
      return entriesOf(res);
    } finally {
      if (this.blockers.has(conn)) this.idleBlockers.push(conn);
    }
  }

  /**
   * A connection for blocking reads: the command timeout would cut every BLOCK longer than it,
   * so instead a read gets its `blockMs` plus ioredis's grace, then resolves empty.
   */
  private async newBlocker(): Promise<Redis> {
    const conn = await this.connectedDuplicate({
      commandTimeout: undefined,
      socketTimeout: undefined,
      blockingTimeout: this.commandTimeoutMs,
    });
    this.blockers.add(conn);
    return conn;
  }

  async ack(stream: string, group: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.run(() => this.redis.xack(this.k(stream), group, ...ids));
  }

  async claimIdle(
    stream: string,
    group: string,
    consumer: string,
    opts: ClaimOptions,
  ): Promise<StreamEntry[]> {
    const count = opts.count ?? 10;
    const out: StreamEntry[] = [];
    let cursor = '0-0';
    do {
      const from = cursor;
      const [next, raw] = (await this.run(() =>
        this.redis.xautoclaim(
          this.k(stream),
          group,
          consumer,
          opts.minIdleMs,
          from,
          'COUNT',
          count - out.length,
        ),
      )) as [string, RawEntry[]];
      for (const e of raw) if (e) out.push(toEntry(e));
      cursor = next;
    } while (cursor !== '0-0' && out.length < count);
    return out;
  }

  async trim(stream: string, maxLen: number): Promise<number> {
    return this.run(() => this.redis.xtrim(this.k(stream), 'MAXLEN', maxLen));
  }

  // ── pub/sub ────────────────────────────────────────────────────────────────────────

  async publish(channel: string, message: string): Promise<number> {
    return this.run(() => this.redis.publish(this.k(channel), message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<Unsubscribe> {
    const sub = await this.subscriberConnection();
    const full = this.k(channel);
    let set = this.handlers.get(full);
    const handler = (m: string) => onMessage(m);
    if (!set) {
      set = new Set();
      this.handlers.set(full, set);
      set.add(handler);
      try {
        await this.run(() => sub.subscribe(full));
      } catch (err) {
        set.delete(handler);
        if (set.size === 0) this.handlers.delete(full);
        throw err;
      }
    } else {
      set.add(handler);
    }
    return async () => {
      const current = this.handlers.get(full);
      if (!current?.delete(handler)) return;
      if (current.size === 0) {
        this.handlers.delete(full);
        await this.run(() => sub.unsubscribe(full));
      }
    };
  }

  private subscriberConnecting: Promise<Redis> | undefined;

  /** The one subscriber connection, connected on first use (again after a failed attempt). */
  private async subscriberConnection(): Promise<Redis> {
    if (this.subscriber) return this.subscriber;
    this.subscriberConnecting ??= this.connectedDuplicate().then(
      (sub) => {
        sub.on('message', (channel: string, message: string) => {
          const set = this.handlers.get(channel);
          if (set) for (const h of set) h(message);
        });
        this.subscriber = sub;
        return sub;
      },
      (err: unknown) => {
        this.subscriberConnecting = undefined;
        throw err;
      },
    );
    return this.subscriberConnecting;
  }

  async health(): Promise<StoreHealth> {
    const started = performance.now();
    try {
      await this.run(() => this.redis.ping());
      return { ok: true, kind: 'redis', latencyMs: Math.round((performance.now() - started) * 100) / 100 };
    } catch (err) {
      return { ok: false, kind: 'redis', error: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    // Blocked connections would hold QUIT until their BLOCK times out: cut them instead.
    for (const c of this.blockers) c.disconnect();
    const conns = [this.redis, this.subscriber].filter((c): c is Redis => c !== undefined);
    this.blockers.clear();
    this.idleBlockers.length = 0;
    this.handlers.clear();
    await Promise.all(
      conns.map(async (c) => {
        try {
          await c.quit();
        } catch {
          c.disconnect();
        }
      }),
    );
  }
}

function assertTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a finite number, got ${ttlMs}`);
}

function toEntry(raw: [string, string[]]): StreamEntry {
  const [id, flat] = raw;
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return { id, fields };
}

function entriesOf(res: [string, RawEntry[]][] | null): StreamEntry[] {
  if (!res) return [];
  const out: StreamEntry[] = [];
  for (const [, entries] of res) for (const e of entries) if (e) out.push(toEntry(e));
  return out;
}
