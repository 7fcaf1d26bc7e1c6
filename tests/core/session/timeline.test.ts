/**
 * The timeline is the last stop before the Store's streams and, from there, Postgres: whatever
 * a caller slipped past a codec, the event data it writes holds only text Postgres accepts.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../core/observability/index.ts';
import { Timeline } from '../../../core/session/timeline.ts';
import { keys, MemoryStore } from '../../../core/store/index.ts';

const log = createLogger({ level: 'silent', service: 'test' });

describe('Timeline', () => {
  it('writes event data without NUL, C0 controls or lone surrogates, to both streams', async () => {
    const store = new MemoryStore();
    const timeline = new Timeline(store, log, { callId: 'c1', agentId: 'a1', protocol: 'native' });
    timeline.append('call.ended', {
      reason: 'stream_stopped',
      detail: 'bye\u0000',
      nested: { [`k\u0001`]: ['\ud800x', 'y\u001b'] },
      missing: undefined,
    });
    expect(await timeline.flush()).toBe(true);
    for (const stream of [keys.callTimeline('c1'), keys.events]) {
      const [entry] = await store.range(stream);
      expect(entry?.fields.data).not.toMatch(/\\u00|\\ud8/);
      expect(JSON.parse(entry!.fields.data!)).toEqual({
        reason: 'stream_stopped',
        detail: 'bye',
        nested: { k: ['x', 'y'] },
      });
    }
    await store.close();
  });

  it('bounds what one event may carry', async () => {
    const store = new MemoryStore();
    const timeline = new Timeline(store, log, { callId: 'c2', agentId: 'a1', protocol: 'native' });
    timeline.append('turn.completed', {
      text: 'x'.repeat(10_000),
      many: Array.from({ length: 1000 }, (_, i) => i),
    });
    expect(await timeline.flush()).toBe(true);
    const [entry] = await store.range(keys.callTimeline('c2'));
    const data = JSON.parse(entry!.fields.data!);
    expect(data.text.length).toBeLessThanOrEqual(4096);
    expect(data.many.length).toBeLessThanOrEqual(200);
    expect(entry!.fields.data!.length).toBeLessThanOrEqual(16 * 1024);
    await store.close();
  });
});
