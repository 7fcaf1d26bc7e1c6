import { describe, expect, it } from 'vitest';
import { SseParser } from '../../../core/wire/sse.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('SseParser', () => {
  const stream =
    ': open\r\n\r\nid: 17\r\nevent: call\r\ndata: {"a":1}\r\n\r\n: heartbeat\n\ndata: two\ndata: lines\n\nevent: empty\n\n';

  it('gives the same events however the bytes are cut, CRLF or LF', () => {
    const whole = new SseParser();
    const expected = [...whole.push(bytes(stream)), ...whole.end()];
    expect(expected).toEqual([
      { event: 'call', data: '{"a":1}', id: '17' },
      // The last id stays until the stream sets another (the spec's last-event-ID buffer).
      { event: 'message', data: 'two\nlines', id: '17' },
    ]);
    expect(whole.comments).toBe(2);
    for (let cut = 1; cut < stream.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(bytes(stream.slice(0, cut))), ...p.push(bytes(stream.slice(cut))), ...p.end()];
      expect(got, `cut at ${cut}`).toEqual(expected);
    }
  });

  it('keeps a multi-byte character split across chunks whole', () => {
    const p = new SseParser();
    const all = bytes('data: café\n\n');
    const at = all.indexOf(0xc3) + 1;
    expect([...p.push(all.subarray(0, at)), ...p.push(all.subarray(at))]).toEqual([
      { event: 'message', data: 'café', id: null },
    ]);
  });
});
