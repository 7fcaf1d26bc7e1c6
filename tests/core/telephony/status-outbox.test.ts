import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../core/observability/index.ts';
import { StoreUnavailableError } from '../../../core/store/redis-store.ts';
import type { StatusUpdate } from '../../../core/telephony/webhooks/admission.ts';
import { StatusOutbox } from '../../../core/telephony/webhooks/status-outbox.ts';
import { eventually } from '../../control/support.ts';

const log = createLogger({ level: 'silent', service: 'test' });

const update = (callId: string, status: string): StatusUpdate => ({
  provider: 'twilio',
  callId,
  providerCallId: callId,
  status,
});

describe('StatusOutbox', () => {
  it('keeps updates in order while the Store is down and delivers them, once, when it is back', async () => {
    let up = false;
    const delivered: StatusUpdate[] = [];
    const attempts = new Map<string, string[]>();
    const buffered: string[] = [];
    const outbox = new StatusOutbox({
      deliver: async (u) => {
        attempts.set(`${u.callId}:${u.status}`, [
          ...(attempts.get(`${u.callId}:${u.status}`) ?? []),
          u.deliveryId!,
        ]);
        if (!up) throw new StoreUnavailableError('store unavailable: test');
        delivered.push(u);
      },
      onBuffered: (u) => buffered.push(`${u.callId}:${u.status}`),
      log,
      retryMinMs: 5,
      retryMaxMs: 20,
    });
    expect(await outbox.accept(update('c1', 'ringing'))).toBe(true);
    expect(await outbox.accept(update('c1', 'completed'))).toBe(true);
    expect(outbox.pending).toBe(2);
    expect(buffered).toEqual(['c1:ringing', 'c1:completed']);
    up = true;
    await eventually(() => outbox.pending === 0, 5_000, 'outbox drained');
    expect(delivered.map((u) => u.status)).toEqual(['ringing', 'completed']);
    // Every attempt of one update carries the same delivery id and its receipt time.
    for (const ids of attempts.values()) expect(new Set(ids).size).toBe(1);
    expect(delivered.every((u) => typeof u.at === 'string')).toBe(true);
    // Up and empty: delivered at once, nothing kept.
    expect(await outbox.accept(update('c2', 'completed'))).toBe(true);
    expect(outbox.pending).toBe(0);
    outbox.stop();
  });

  it('refuses past its bound, so the provider keeps the update and retries', async () => {
    const outbox = new StatusOutbox({
      deliver: async () => {
        throw new StoreUnavailableError('store unavailable: test');
      },
      log,
      maxPending: 2,
      retryMinMs: 60_000,
    });
    expect(await outbox.accept(update('a', 'ringing'))).toBe(true);
    expect(await outbox.accept(update('b', 'ringing'))).toBe(true);
    expect(await outbox.accept(update('c', 'ringing'))).toBe(false);
    expect(outbox.pending).toBe(2);
    expect(await outbox.flush()).toBe(2);
    outbox.stop();
  });

  it('does not keep what is not an outage: the error reaches the caller', async () => {
    const outbox = new StatusOutbox({
      deliver: async () => {
        throw new Error('bug');
      },
      log,
    });
    await expect(outbox.accept(update('a', 'ringing'))).rejects.toThrow('bug');
    expect(outbox.pending).toBe(0);
  });
});
