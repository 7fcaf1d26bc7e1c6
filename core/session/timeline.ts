import type { Logger } from '../observability/log.ts';
import { keys } from '../store/keys.ts';
import type { Store } from '../store/store.ts';
import { SANITIZE_LIMITS, sanitizeJson, sanitizeText } from '../wire/sanitize.ts';

export interface TimelineOptions {
  callId: string;
  agentId: string;
  protocol: string;
  /** Entries kept per call stream. */
  callMaxLen?: number;
  /** Entries kept in the global event stream (consumers must keep up within this window). */
  globalMaxLen?: number;
  /** Entries held in memory while the Store is unreachable, before the oldest are dropped. */
  maxBuffered?: number;
}

interface Pending {
  type: string;
  global: boolean;
  fields: Record<string, string>;
  /** Set once the call stream has it, so a retry after a failed global append does not repeat it. */
  wroteCall: boolean;
}

/** Longest serialised `data` of one event; larger data is replaced by a note saying so. */
const MAX_DATA_CHARS = 16 * 1024;

/**
 * `data` as JSON Postgres accepts (defence in depth behind the codecs' sanitiser): every string
 * cleaned of NUL, C0 controls and lone surrogates and bounded, depth and width bounded, and the
 * whole bounded. Never throws (cycles, BigInt).
 */
export function serializeEventData(data: Record<string, unknown>): string {
  const json = JSON.stringify(sanitizeJson(data));
  if (json.length <= MAX_DATA_CHARS) return json;
  return JSON.stringify({ truncated: true, chars: json.length });
}

/** Event types that also go to the global stream (call summaries, not every step). */
const GLOBAL_TYPES = new Set(['call.started', 'call.ended', 'turn.completed', 'barge_in', 'dtmf']);

/**
 * A call's timeline: every step appended, in order, to the call's stream, and the summary
 * steps to the global event stream. Appends never block or throw into the call: they queue,
 * one writer drains the queue in order, and a Store outage is retried with backoff while the
 * queue (bounded) holds the events.
 */
export class Timeline {
  private readonly queue: Pending[] = [];
  private draining: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly opts: TimelineOptions,
  ) {}

  /** Ms since the call started: the `tMs` of every event. */
  get elapsedMs(): number {
    return Date.now() - this.startedAt;
  }

  /** Queues one event; `data` is sanitised and bounded before it is serialised (`serializeEventData`). */
  append(type: string, data?: Record<string, unknown>): void {
    const fields: Record<string, string> = {
      type: sanitizeText(type, SANITIZE_LIMITS.key),
      callId: this.opts.callId,
      agentId: this.opts.agentId,
      protocol: this.opts.protocol,
      at: new Date().toISOString(),
      tMs: String(this.elapsedMs),
    };
    if (data) fields.data = serializeEventData(data);
    this.queue.push({ type, global: GLOBAL_TYPES.has(type), fields, wroteCall: false });
    const max = this.opts.maxBuffered ?? 1000;
    if (this.queue.length > max) {
      this.queue.splice(0, this.queue.length - max);
      this.dropped++;
      this.log.error({ callId: this.opts.callId, max }, 'timeline buffer full, dropped oldest events');
    }
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /** Waits until everything appended so far is written, or `timeoutMs` passes. */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 || this.draining) {
      if (Date.now() > deadline) return false;
      await Promise.race([this.draining, Bun.sleep(Math.max(1, deadline - Date.now()))]);
    }
    return true;
  }

  private async drain(): Promise<void> {
    let backoffMs = 50;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      try {
        if (!next.wroteCall) {
          await this.store.append(
            keys.callTimeline(this.opts.callId),
            next.fields,
            this.opts.callMaxLen ?? 2000,
          );
          next.wroteCall = true;
        }
        if (next.global) await this.store.append(keys.events, next.fields, this.opts.globalMaxLen ?? 100_000);
        if (this.queue[0] === next) this.queue.shift();
        backoffMs = 50;
      } catch (err) {
        this.log.warn(
          { callId: this.opts.callId, err: (err as Error).message, backoffMs },
          'timeline append failed, retrying',
        );
        await Bun.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }
}
