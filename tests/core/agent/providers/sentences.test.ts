import { describe, expect, it } from 'vitest';
import {
  LONG_CLAUSE_CHARS,
  MAX_SENTENCE_CHARS,
  SentenceSplitter,
  sentencesOf,
} from '../../../../core/agent/providers/tts/sentences.ts';

async function* pieces(...parts: string[]): AsyncGenerator<string> {
  for (const p of parts) yield p;
}

async function collect(text: AsyncIterable<string> | string): Promise<string[]> {
  const out: string[] = [];
  for await (const s of sentencesOf(text)) out.push(s);
  return out;
}

describe('SentenceSplitter', () => {
  it('emits a sentence at . ! ? followed by white space, and keeps the rest', () => {
    const s = new SentenceSplitter();
    expect(s.push('Hello there. How are')).toEqual(['Hello there.']);
    expect(s.push(' you? Great! And')).toEqual(['How are you?', 'Great!']);
    expect(s.flush()).toEqual(['And']);
    expect(s.flush()).toEqual([]);
  });

  it('waits for the space after a full stop, so decimals and a trailing stop are not cut', () => {
    const s = new SentenceSplitter();
    expect(s.push('It costs 3.50 dollars.')).toEqual([]);
    expect(s.push('\nNext')).toEqual(['It costs 3.50 dollars.']);
    expect(s.flush()).toEqual(['Next']);
  });

  it('cuts a long clause at a comma or semicolon, but not a short one', () => {
    const short = new SentenceSplitter();
    expect(short.push('Yes, of course; right away ')).toEqual([]);
    const long = new SentenceSplitter();
    const clause = `${'word '.repeat(Math.ceil(LONG_CLAUSE_CHARS / 5))}end,`;
    expect(long.push(`${clause} and more`)).toEqual([clause.trim()]);
    expect(long.flush()).toEqual(['and more']);
  });

  it('cuts text with no break at a space before the maximum length', () => {
    const s = new SentenceSplitter();
    const out = s.push('abcd '.repeat(100));
    expect(out.length).toBeGreaterThan(0);
    for (const sentence of out) {
      expect(sentence.length).toBeLessThanOrEqual(MAX_SENTENCE_CHARS);
      expect(sentence.endsWith('abcd')).toBe(true);
    }
    expect([...out, ...s.flush()].join(' ')).toBe('abcd '.repeat(100).trim());
  });

  it('drops sentences with nothing to say and trims white space', () => {
    const s = new SentenceSplitter();
    expect(s.push('  .  ! Ok.  ')).toEqual(['Ok.']);
    expect(s.push(' -- ')).toEqual([]);
    expect(s.flush()).toEqual([]);
  });
});

describe('sentencesOf', () => {
  it('gives the same sentences however the stream is cut into pieces', async () => {
    const text =
      'Thanks for calling. Your order shipped on Monday, and it should arrive soon! Anything else? ' +
      `${'Here is a long clause that keeps going and going '.repeat(3)}, then the rest`;
    const whole = await collect(text);
    expect(whole.length).toBe(5);
    const byChar = await collect(pieces(...text.split('')));
    const byThree = await collect(pieces(...(text.match(/.{1,3}/gs) ?? [])));
    expect(byChar).toEqual(whole);
    expect(byThree).toEqual(whole);
  });

  it('yields a sentence as soon as it completes, before the stream ends', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* slow(): AsyncGenerator<string> {
      yield 'First one. Sec';
      await gate;
      yield 'ond one.';
    }
    const it = sentencesOf(slow());
    expect((await it.next()).value).toBe('First one.');
    release();
    expect((await it.next()).value).toBe('Second one.');
    expect((await it.next()).done).toBe(true);
  });
});
