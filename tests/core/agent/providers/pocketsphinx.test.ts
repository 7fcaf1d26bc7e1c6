import { afterAll, describe, expect, it } from 'vitest';
import { stopDecoderThread } from '../../../../core/agent/providers/stt/decoder-thread.ts';
import {
  continuousCommand,
  missingWords,
  normalizeWords,
  pocketsphinxAvailable,
} from '../../../../core/agent/providers/stt/dictionary.ts';
import { compileGrammar, jsgfText } from '../../../../core/agent/providers/stt/grammar.ts';
import {
  closeDecoderPools,
  decoderPoolSizes,
  decoderThreadPoolSizes,
  MAX_DECODERS_PER_KEY,
  PocketsphinxStt,
  recognize,
} from '../../../../core/agent/providers/stt/pocketsphinx.ts';
import { ProviderError, type Transcript } from '../../../../core/agent/providers/types.ts';
import { phonePath, synthesize, voicesAvailable, withSilence } from '../../../support/voices.ts';

const RATE = 16000;

/** A front-desk agent's intents, and the scripted brain's built-in phrases. */
const INTENTS: Record<string, string[]> = {
  hours: ['what are your opening hours', 'when are you open'],
  location: ['where are you located', 'what is your address'],
  booking: ['i would like to book a table', 'make a reservation'],
  person: ['talk to a person'],
};
const BUILT_IN = [
  'yes',
  'no',
  'goodbye',
  'bye',
  'talk to a person',
  'a person',
  'an operator',
  'representative',
  'repeat that',
  'say that again',
];
const PHRASES = [...Object.values(INTENTS).flat(), ...BUILT_IN];
const OUT_OF_GRAMMAR = ['the weather is lovely in paris today', 'my cat likes to sleep on the sofa'];
const VOICES = ['rms', 'slt', 'awb', 'kal16'];

/** `text` spoken by a flite voice, as a phone call hands it to a 16 kHz recogniser. */
function caller(text: string, voice: string): Int16Array {
  return phonePath(withSilence(synthesize(text, { engine: 'flite', voice, sampleRate: RATE }), RATE, 300));
}

/** Pushes `pcm` in 20 ms frames, as the session does, and finalises. */
async function hear(stt: PocketsphinxStt, phrases: string[], pcm: Int16Array): Promise<Transcript> {
  const stream = await stt.open({ sampleRate: RATE, language: 'en-US', phrases });
  try {
    const frame = RATE / 50;
    for (let i = 0; i < pcm.length; i += frame) stream.push(pcm.subarray(i, i + frame));
    return await stream.finalize();
  } finally {
    stream.close();
  }
}

describe('pocketsphinx words', () => {
  it('normalises phrases as the grammar does', () => {
    expect(normalizeWords("What's your ADDRESS? Table for 4, at 7:30")).toEqual([
      "what's",
      'your',
      'address',
      'table',
      'for',
      'four',
      'at',
      'seven',
      'thirty',
    ]);
  });

  it.skipIf(!pocketsphinxAvailable().ok)('names words the dictionary lacks', () => {
    expect(missingWords(['I would like a zorblaxian table', 'Zorblaxian!', 'hello'])).toEqual(['zorblaxian']);
    expect(missingWords(PHRASES)).toEqual([]);
  });

  it.skipIf(!pocketsphinxAvailable().ok)(
    'drops missing words from the grammar and keeps one public rule',
    () => {
      const grammar = compileGrammar(['Book a zorblaxian table', 'Yes!', 'zorblaxian'])!;
      expect(grammar.dropped).toEqual(['zorblaxian']);
      expect([...grammar.phrases.keys()].sort()).toEqual(['book a table', 'yes']);
      expect(grammar.phrases.get('yes')).toBe('Yes!');
      expect(jsgfText(['book a table', 'yes'])).toMatch(/public <phrase> =\s+book a table\s+\| yes\s+;/);
      expect(compileGrammar(['zorblaxian'])).toBeNull();
      // Same phrase set in another order or case: the same cached grammar.
      expect(compileGrammar(['yes', 'book a zorblaxian table'])!.key).toBe(grammar.key);
    },
  );
});

describe('pocketsphinx missing', () => {
  it('refuses to open without its model, naming the Debian package', async () => {
    const saved = process.env.POCKETSPHINX_MODEL_DIR;
    process.env.POCKETSPHINX_MODEL_DIR = '/nonexistent/pocketsphinx-model';
    try {
      expect(pocketsphinxAvailable()).toEqual({ ok: false, missing: 'pocketsphinx-en-us' });
      const err = await new PocketsphinxStt()
        .open({ sampleRate: RATE, language: 'en-US', phrases: ['yes'] })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ provider: 'pocketsphinx', retryable: false, code: 'missing_dependency' });
      expect((err as Error).message).toContain('pocketsphinx-en-us');
    } finally {
      if (saved === undefined) delete process.env.POCKETSPHINX_MODEL_DIR;
      else process.env.POCKETSPHINX_MODEL_DIR = saved;
    }
  });
});

describe.skipIf(!pocketsphinxAvailable().ok || !voicesAvailable.flite)(
  'pocketsphinx over the phone path',
  () => {
    const stt = new PocketsphinxStt();
    afterAll(() => {
      stopDecoderThread();
      closeDecoderPools();
    });

    it('recognises a front-desk agent’s intents from four voices', { timeout: 180_000 }, async () => {
      const misses: string[] = [];
      for (const voice of VOICES) {
        for (const [intent, examples] of Object.entries(INTENTS)) {
          for (const phrase of examples) {
            const t = await hear(stt, PHRASES, caller(phrase, voice));
            expect(t.final).toBe(true);
            if (t.text !== phrase || t.rejected) misses.push(`${voice}/${intent}: "${phrase}" → "${t.text}"`);
            else expect(t.confidence).toBeGreaterThan(0.5);
          }
        }
      }
      expect(misses).toEqual([]);
    });

    it('rejects out-of-grammar sentences instead of forcing them into a phrase', {
      timeout: 120_000,
    }, async () => {
      const accepted: string[] = [];
      for (const voice of VOICES) {
        for (const sentence of OUT_OF_GRAMMAR) {
          const t = await hear(stt, PHRASES, caller(sentence, voice));
          if (!t.rejected || t.text !== '') accepted.push(`${voice}: "${sentence}" → "${t.text}"`);
          else expect(t.confidence ?? 0).toBeLessThan(0.5);
        }
      }
      expect(accepted).toEqual([]);
    });

    it('returns empty text, not a rejection, when nothing was said', async () => {
      const t = await hear(stt, PHRASES, new Int16Array(RATE));
      expect(t).toEqual({ text: '', final: true });
    });

    it('gives a fresh pooled decoder’s first utterance a result', { timeout: 60_000 }, async () => {
      // A phrase set no other test uses: its grammar pool starts empty.
      const phrases = ['check my order', 'cancel my order', 'yes', 'no'];
      const grammar = compileGrammar(phrases)!;
      expect((await decoderThreadPoolSizes())[`grammar:${grammar.key}`] ?? 0).toBe(0);
      const t = await hear(stt, phrases, caller('cancel my order', 'slt'));
      expect((await decoderThreadPoolSizes())[`grammar:${grammar.key}`]).toBe(1);
      expect(t.text).toBe('cancel my order');
      expect(t.rejected).toBe(false);
    });

    it('scores a fresh decoder’s first utterance exactly like its second', {
      timeout: 60_000,
    }, async () => {
      // In this thread's pools (the decoding thread's are separate): a fresh grammar decoder.
      const grammar = compileGrammar(['check my order', 'cancel my order', 'yes', 'no'])!;
      expect(decoderPoolSizes()[`grammar:${grammar.key}`] ?? 0).toBe(0);
      const audio = caller('cancel my order', 'kal16');
      const first = await recognize(audio, grammar);
      const second = await recognize(audio, grammar);
      expect(first.transcript.text).toBe('cancel my order');
      expect(second.transcript.text).toBe('cancel my order');
      expect(second.scorePerFrame).toBe(first.scorePerFrame);
    });

    it('decodes each utterance as if the decoder were fresh, whatever it heard before', {
      timeout: 60_000,
    }, async () => {
      // Pooled decoders serve phone calls and wideband browser sessions alike: a decoder that
      // just heard wideband speech must hear the next phone-band caller as well as a fresh one.
      const grammar = compileGrammar(PHRASES)!;
      const narrow = caller('what are your opening hours', 'slt');
      const wide = withSilence(
        synthesize('i would like to book a table', { engine: 'flite', voice: 'awb', sampleRate: RATE }),
        RATE,
        300,
      );
      const alone = await recognize(narrow, grammar);
      for (let i = 0; i < 3; i++)
        expect((await recognize(wide, grammar)).transcript.text).toBe('i would like to book a table');
      const afterWide = await recognize(narrow, grammar);
      expect(alone.transcript.text).toBe('what are your opening hours');
      expect(afterWide.transcript.text).toBe('what are your opening hours');
      expect(afterWide.scorePerFrame).toBe(alone.scorePerFrame);
    });

    it('reuses pooled decoders across many concurrent streams', { timeout: 60_000 }, async () => {
      const grammar = compileGrammar(PHRASES)!;
      const audio = [caller('make a reservation', 'awb'), caller('goodbye', 'rms')];
      const streams = await Promise.all(
        Array.from({ length: 24 }, () => stt.open({ sampleRate: RATE, language: 'en-US', phrases: PHRASES })),
      );
      for (const [i, s] of streams.entries()) s.push(audio[i % 2]!);
      const results = await Promise.all(streams.map((s) => s.finalize()));
      for (const s of streams) s.close();
      expect(results.map((r) => r.text)).toEqual(
        Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? 'make a reservation' : 'goodbye')),
      );
      const sizes = await decoderThreadPoolSizes();
      expect(sizes[`grammar:${grammar.key}`]).toBeGreaterThanOrEqual(1);
      expect(sizes[`grammar:${grammar.key}`]).toBeLessThanOrEqual(MAX_DECODERS_PER_KEY);
    });

    it('decodes off the event loop: timers keep firing during a decode', { timeout: 60_000 }, async () => {
      const count = async (engine: PocketsphinxStt): Promise<{ ticks: number; text: string }> => {
        const stream = await engine.open({ sampleRate: RATE, language: 'en-US', phrases: PHRASES });
        stream.push(caller('i would like to book a table', 'rms'));
        let settled = false;
        const result = stream.finalize().finally(() => {
          settled = true;
        });
        let ticks = 0;
        while (!settled) {
          await new Promise((r) => setTimeout(r, 0));
          ticks++;
        }
        stream.close();
        return { ticks, text: (await result).text };
      };
      const threaded = await count(stt);
      const inProcess = await count(new PocketsphinxStt({ thread: false }));
      expect(threaded.text).toBe('i would like to book a table');
      expect(inProcess.text).toBe('i would like to book a table');
      expect(inProcess.ticks).toBeLessThanOrEqual(2);
      expect(threaded.ticks).toBeGreaterThan(2);
      // The in-process decoders live in this thread's pools, bounded like the thread's.
      const grammar = compileGrammar(PHRASES)!;
      expect(decoderPoolSizes()[`grammar:${grammar.key}`]).toBe(1);
    });

    it('takes 8 kHz audio too, resampling it inside the stream', { timeout: 60_000 }, async () => {
      const narrow = synthesize('where are you located', {
        engine: 'flite',
        voice: 'kal16',
        sampleRate: 8000,
      });
      const stream = await stt.open({ sampleRate: 8000, language: 'en-US', phrases: PHRASES });
      stream.push(withSilence(narrow, 8000, 300));
      const t = await stream.finalize();
      stream.close();
      expect(t.text).toBe('where are you located');
    });

    it('decodes with the full language model, at lower confidence, when there are no phrases', {
      timeout: 120_000,
    }, async () => {
      const r = await recognize(caller('what are your opening hours', 'rms'), null);
      expect(r.hypothesis.split(' ')).toEqual(expect.arrayContaining(['opening', 'hours']));
      expect(r.transcript.rejected).toBeUndefined();
      expect(r.transcript.confidence).toBeLessThanOrEqual(0.5);
    });

    it.skipIf(!continuousCommand())(
      'falls back to pocketsphinx_continuous, with no confidence',
      {
        timeout: 60_000,
      },
      async () => {
        const cli = new PocketsphinxStt({ forceCommand: true });
        const t = await hear(cli, PHRASES, caller('talk to a person', 'rms'));
        expect(t).toEqual({ text: 'talk to a person', final: true });
      },
    );
  },
);
