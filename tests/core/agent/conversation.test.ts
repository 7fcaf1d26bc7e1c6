import { afterEach, describe, expect, it } from 'vitest';
import type { Brain, BrainOutput } from '../../../core/agent/brains/brain.ts';
import { ScriptedBrain } from '../../../core/agent/brains/scripted.ts';
import type { AgentRecord } from '../../../core/agent/config.ts';
import { parseAgentRecord } from '../../../core/agent/config.ts';
import { Conversation, type Timers } from '../../../core/agent/conversation.ts';
import { pocketsphinxAvailable } from '../../../core/agent/providers/stt/dictionary.ts';
import { PocketsphinxStt } from '../../../core/agent/providers/stt/pocketsphinx.ts';
import type {
  AudioChunk,
  SpeechToText,
  SttStream,
  TextToSpeech,
  Transcript,
  VoiceDetector,
} from '../../../core/agent/providers/types.ts';
import { SileroVad, sileroAvailable } from '../../../core/agent/providers/vad/silero.ts';
import { ModelVad } from '../../../core/agent/vad.ts';
import { decodeMulaw, encodeMulaw } from '../../../core/audio/g711.ts';
import type { FrameClock } from '../../../core/audio/index.ts';
import { Resampler } from '../../../core/audio/resampler.ts';
import { CallCapacity } from '../../../core/capacity/call-capacity.ts';
import { createLogger } from '../../../core/observability/log.ts';
import { registry } from '../../../core/observability/metrics.ts';
import { APOLOGY, CallSession, type EndReason } from '../../../core/session/call-session.ts';
import { keys } from '../../../core/store/keys.ts';
import { MemoryStore } from '../../../core/store/memory-store.ts';
import type { OutboundFrame } from '../../../core/wire/frames.ts';
import { eventually } from '../../control/support.ts';
import { synthesize, voicesAvailable } from '../../support/voices.ts';

const RATE = 16000;
const FRAME = 320; // 20 ms at 16 kHz
/** Audio a fake voice makes per word: long enough that a reply takes seconds to play. */
const MS_PER_WORD = 200;

/**
 * Everything time-driven runs on one hand-driven clock: the frame clock that paces playout, the
 * session's wall clock and the conversation's timers. `step()` advances 20 ms and delivers one
 * inbound frame, the way a provider's stream would.
 */
function harness(
  opts: {
    record?: Partial<AgentRecord>;
    stt?: SpeechToText;
    /** The speech detector; default: one that hears speech wherever a sample is non-zero. */
    detector?: VoiceDetector;
    direction?: 'inbound' | 'outbound';
    transfer?: (to: string) => Promise<void>;
    brain?: Brain;
    fillerAfterMs?: number;
  } = {},
) {
  let nowMs = 1_000_000;
  const listeners = new Set<() => void>();
  const clock = {
    subscribe(fn: () => void) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    poke() {}, // this clock never loses a tick
  } as unknown as FrameClock;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let timerId = 0;
  const manualTimers: Timers = {
    now: () => nowMs,
    setTimeout: (fn, ms) => {
      const id = ++timerId;
      timers.push({ at: nowMs + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const sent: { atMs: number; frame: OutboundFrame }[] = [];
  const transport = {
    send: (frame: OutboundFrame) => {
      sent.push({
        atMs: nowMs,
        frame: frame.kind === 'audio_out' ? { ...frame, data: frame.data.slice() } : frame,
      });
    },
    close: () => {},
  };
  const parsed = parseAgentRecord('agt_test', {
    brain: 'scripted',
    greeting: 'Hello there.',
    intents: [
      {
        name: 'hours',
        examples: ['what are your opening hours'],
        reply: 'We are open from nine in the morning until five in the evening every single day of the week.',
      },
    ],
    ...opts.record,
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const record = parsed.record;
  const stt = opts.stt ?? new FakeStt();
  const conversation = new Conversation({
    brain: opts.brain ?? new ScriptedBrain(record),
    stt,
    timers: manualTimers,
    fillerAfterMs: opts.fillerAfterMs ?? 10_000,
  });
  const store = new MemoryStore();
  const ended: EndReason[] = [];
  const capacity = new CallCapacity(store, { globalMax: 10, perCampaignMax: 10, ttlMs: 60_000 });
  const session = new CallSession({
    callId: 'call-1',
    agentId: record.id,
    protocol: 'native',
    start: {
      kind: 'start',
      callId: 'call-1',
      encoding: 'pcm16',
      sampleRate: RATE,
      channels: 1,
      params: {},
      call: {},
    },
    call: { direction: opts.direction ?? 'inbound' },
    transfer: opts.transfer,
    wireOut: { encoding: 'pcm16', sampleRate: RATE },
    agent: conversation,
    agentConfig: record,
    vad: new ModelVad(opts.detector ?? new MarkerDetector(), {
      sampleRate: RATE,
      stopMs: record.endpointing.minMs,
      startMs: 100,
    }),
    tts: new FakeVoice(),
    pipelineRate: RATE,
    transport,
    store,
    log: createLogger({ level: 'silent', service: 'test' }),
    clock,
    idleTimeoutMs: 600_000,
    maxDurationMs: 3_600_000,
    now: () => nowMs,
    monotonicNow: () => nowMs,
    onEnded: (_s, reason) => {
      ended.push(reason);
      void capacity.release('call-1');
    },
  });
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  };
  /** One 20 ms step: time moves, due timers fire, one inbound frame arrives, the clock ticks. */
  const step = async (voiced: boolean | Int16Array) => {
    nowMs += 20;
    for (const t of [...timers].sort((a, b) => a.at - b.at)) {
      if (t.at <= nowMs) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
    }
    const pcm = typeof voiced === 'boolean' ? new Int16Array(FRAME).fill(voiced ? 1 : 0) : voiced;
    session.handle({
      kind: 'audio_in',
      encoding: 'pcm16',
      sampleRate: RATE,
      data: new Uint8Array(pcm.buffer),
    });
    for (const l of [...listeners]) l();
    await settle();
  };
  const run = async (frames: number, voiced: boolean) => {
    for (let i = 0; i < frames; i++) await step(voiced);
  };
  const events = async () => {
    await session.timeline.flush();
    const entries = await store.range(keys.callTimeline('call-1'));
    return entries.map((e) => ({
      type: e.fields.type!,
      data: e.fields.data ? JSON.parse(e.fields.data) : {},
    }));
  };
  return { session, conversation, sent, step, run, settle, events, ended, capacity, stt, now: () => nowMs };
}

/** A detector that hears speech where the test put it: non-zero samples. */
class MarkerDetector implements VoiceDetector {
  readonly name = 'marker';
  readonly sampleRate = RATE;
  process(pcm: Int16Array): number {
    return pcm[0] !== 0 ? 1 : 0;
  }
  reset(): void {}
}

/** A recogniser that answers each endpoint with the next scripted transcript. */
class FakeStt implements SpeechToText {
  readonly name = 'fake';
  readonly sampleRates = [RATE];
  pushed = 0;
  constructor(
    readonly script: (Transcript | Error)[] = [],
    readonly phrasesSeen: string[][] = [],
  ) {}
  async open(opts: { phrases?: string[] }): Promise<SttStream> {
    this.phrasesSeen.push(opts.phrases ?? []);
    return {
      push: (pcm) => {
        this.pushed += pcm.length;
      },
      finalize: async () => {
        const next = this.script.shift() ?? { text: '', final: true };
        if (next instanceof Error) throw next;
        return next;
      },
      close: () => {},
    };
  }
}

/** A zero-latency voice: a sentence becomes MS_PER_WORD of audio per word, with its text. */
class FakeVoice implements TextToSpeech {
  readonly name = 'fake-voice';
  readonly sampleRate = RATE;
  async *synthesize(text: AsyncIterable<string> | string, signal: AbortSignal): AsyncIterable<AudioChunk> {
    let all = '';
    if (typeof text === 'string') all = text;
    else for await (const piece of text) all += piece;
    for (const sentence of all.split(/(?<=[.!?])\s+/).filter(Boolean)) {
      if (signal.aborted) return;
      const n = sentence.split(/\s+/).length;
      yield {
        pcm: new Int16Array((n * MS_PER_WORD * RATE) / 1000).fill(500),
        sampleRate: RATE,
        text: sentence,
      };
    }
  }
}

const audioFrames = (sent: { frame: OutboundFrame }[]) =>
  sent.filter((s) => s.frame.kind === 'audio_out').length;
const kinds = (sent: { frame: OutboundFrame }[]) => sent.map((s) => s.frame.kind);

describe('Conversation orchestration (hand-driven clock, scripted fakes)', () => {
  let h: ReturnType<typeof harness>;
  afterEach(() => h?.session.close('server_shutdown'));

  async function greetAndAsk(stt: FakeStt) {
    h = harness({ stt });
    void h.session.begin();
    await h.settle();
    // The greeting ("Hello there." = 2 words = 400 ms) plays out.
    await h.run(30, false);
    // The caller asks (400 ms of speech), then the endpointing silence (500 ms).
    await h.run(20, true);
    await h.run(26, false);
  }

  it('greets, answers an intent sentence by sentence, and records what was said with its latency', async () => {
    await greetAndAsk(new FakeStt([{ text: 'what are your opening hours', final: true }]));
    await h.run(400, false);
    const events = await h.events();
    const said = events.filter((e) => e.type === 'agent.said').map((e) => e.data.text);
    expect(said[0]).toBe('Hello there.');
    expect(said[1]).toBe(
      'We are open from nine in the morning until five in the evening every single day of the week. Is there anything else I can help you with?',
    );
    const final = events.find((e) => e.type === 'transcript.final');
    expect(final?.data.text).toBe('what are your opening hours');
    const latency = events.find((e) => e.type === 'turn.latency');
    // Zero-latency fakes: from the end of speech, the endpointing silence plus at most a frame.
    expect(latency?.data.turnMs).toBeGreaterThanOrEqual(500);
    expect(latency?.data.turnMs).toBeLessThanOrEqual(540);
    expect(latency?.data.endpointingMs).toBe(500);
    // And on /metrics, by stage and provider.
    const metrics = await registry.getSingleMetricAsString('sipai_turn_stage_seconds');
    expect(metrics).toMatch(/sipai_turn_stage_seconds_count\{stage="turn",provider="scripted"\} [1-9]/);
    expect(metrics).toMatch(/sipai_turn_stage_seconds_count\{stage="stt",provider="fake"\} [1-9]/);
    // Native clients saw the transcript and the agent's text.
    expect(kinds(h.sent)).toContain('transcript');
    expect(kinds(h.sent)).toContain('agent_text');
    expect(h.conversation.history.map((m) => m.role)).toEqual(['assistant', 'user', 'assistant']);
  });

  it('barges in only after interruptMinMs of caller speech, sending clear within that frame', async () => {
    await greetAndAsk(new FakeStt([{ text: 'what are your opening hours', final: true }]));
    // Let the reply start playing.
    await h.run(25, false);
    expect(audioFrames(h.sent)).toBeGreaterThan(0);
    const before = h.sent.length;
    // Speech starts: the VAD needs 100 ms to call it speech; interruptMinMs (300) counts from
    // its first voiced frame, so the clear goes out on the 15th voiced frame, not before.
    for (let i = 1; i <= 15; i++) {
      await h.step(true);
      const cleared = h.sent.slice(before).some((s) => s.frame.kind === 'clear');
      if (i < 15) expect(cleared, `no clear after ${i * 20} ms of speech`).toBe(false);
      else expect(cleared, 'clear on the frame reaching 300 ms').toBe(true);
    }
    // Nothing more is played after the clear while the caller talks.
    const afterClear = h.sent.length;
    await h.run(5, true);
    expect(audioFrames(h.sent.slice(afterClear))).toBe(0);
  });

  it('keeps in the history exactly the words the caller heard before the interruption', async () => {
    await greetAndAsk(
      new FakeStt([
        { text: 'what are your opening hours', final: true },
        { text: 'what are your opening hours', final: true },
      ]),
    );
    // 1.2 s of the reply plays (about 6 words at 200 ms a word), then the caller cuts in.
    await h.run(60, false);
    await h.run(20, true);
    const events = await h.events();
    const cut = events.find((e) => e.type === 'agent.said' && e.data.interrupted === true);
    expect(cut).toBeDefined();
    const heard = cut!.data.text as string;
    const full =
      'We are open from nine in the morning until five in the evening every single day of the week.';
    expect(full.startsWith(heard)).toBe(true);
    const wordsHeard = heard.split(/\s+/).length;
    // Played time over 200 ms a word, give or take the one word in progress.
    expect(Math.abs(wordsHeard - Math.floor(cut!.data.playedMs / MS_PER_WORD))).toBeLessThanOrEqual(1);
    expect(wordsHeard).toBeLessThan(full.split(/\s+/).length);
    const assistant = h.conversation.history.filter((m) => m.role === 'assistant').map((m) => m.content);
    expect(assistant.at(-1)).toBe(heard);
    expect(assistant.join(' ')).not.toContain('every single day');
  });

  it('does not let a cough interrupt the agent', async () => {
    await greetAndAsk(
      new FakeStt([
        { text: 'what are your opening hours', final: true },
        { text: '', final: true },
      ]),
    );
    await h.run(25, false);
    const before = h.sent.length;
    // 120 ms of sound: the VAD calls it speech, but it is shorter than interruptMinMs.
    await h.run(6, true);
    await h.run(60, false);
    expect(kinds(h.sent.slice(before))).not.toContain('clear');
    await h.run(400, false);
    const events = await h.events();
    const reply = events.filter((e) => e.type === 'agent.said')[1];
    expect(reply?.data.interrupted).toBe(false);
  });

  it('resumes what was cut off when the interruption turns out to be no words', async () => {
    await greetAndAsk(
      new FakeStt([
        { text: 'what are your opening hours', final: true },
        { text: '', final: true },
      ]),
    );
    await h.run(40, false);
    // 400 ms of noise the VAD takes for speech: it interrupts; the recogniser hears no words.
    await h.run(20, true);
    const cutAt = h.sent.length;
    await h.run(26, false);
    await h.run(400, false);
    const events = await h.events();
    expect(events.some((e) => e.type === 'agent.resumed')).toBe(true);
    const said = events.filter((e) => e.type === 'agent.said');
    const first = said[1]!;
    const resumed = said[2]!;
    expect(first.data.interrupted).toBe(true);
    expect(resumed.data.interrupted).toBe(false);
    // The resumed part is the rest of the reply: together they are the whole of it.
    expect(first.data.playedMs + resumed.data.playedMs).toBeGreaterThanOrEqual(first.data.totalMs - 40);
    expect(audioFrames(h.sent.slice(cutAt))).toBeGreaterThan(0);
    expect(h.conversation.history.filter((m) => m.role === 'user')).toHaveLength(1);
  });

  it('ends the call with a spoken apology when a provider fails mid-call, and releases its leases', async () => {
    h = harness({ stt: new FakeStt([new Error('recogniser crashed')]) });
    expect((await h.capacity.admit('call-1')).ok).toBe(true);
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    await h.run(20, true);
    await h.run(26, false);
    // The apology plays out, then the call ends.
    for (let i = 0; i < 600 && h.ended.length === 0; i++) await h.step(false);
    expect(h.ended).toEqual(['error']);
    const events = await h.events();
    expect(events.find((e) => e.type === 'agent.error')?.data.message).toBe('recogniser crashed');
    expect(events.find((e) => e.type === 'agent.said' && e.data.text === APOLOGY)?.data.interrupted).toBe(
      false,
    );
    expect(events.at(-1)?.type).toBe('call.ended');
    await h.settle();
    expect((await h.capacity.counts()).global.count).toBe(0);
  });

  it('answers keypad digits and typed text as turns', async () => {
    h = harness({
      record: {
        intents: [{ name: 'hours', examples: ['opening hours'], reply: 'We open at nine.', digit: '1' }],
      },
    });
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    h.session.handle({ kind: 'dtmf', digit: '1' });
    await h.run(200, false);
    h.session.handle({ kind: 'text', text: 'what are your opening hours' });
    await h.run(200, false);
    const said = (await h.events()).filter((e) => e.type === 'agent.said').map((e) => e.data.text as string);
    expect(said[1]).toContain('We open at nine.');
    expect(said[2]).toContain('We open at nine.');
  });

  it('waits up to endpointing.maxMs when the words look unfinished, and takes the rest as the same turn', async () => {
    const stt = new FakeStt([
      { text: 'what are your', final: true },
      { text: 'opening hours', final: true },
    ]);
    h = harness({ stt, record: { endpointing: { minMs: 500, maxMs: 2000 } } });
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    await h.run(20, true);
    // 500 ms of silence ends the VAD's turn; "what are your" is unfinished, so no reply yet.
    await h.run(40, false);
    let events = await h.events();
    expect(events.filter((e) => e.type === 'agent.said')).toHaveLength(1);
    // The caller goes on within maxMs: one turn, answered as a whole.
    await h.run(20, true);
    await h.run(400, false);
    events = await h.events();
    const said = events.filter((e) => e.type === 'agent.said').map((e) => e.data.text as string);
    expect(said[1]).toContain('We are open from nine');
    expect(h.conversation.history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual([
      'what are your opening hours',
    ]);
  });

  it('answers after maxMs with the unfinished words when the caller does not go on', async () => {
    h = harness({
      stt: new FakeStt([{ text: 'i would like to', final: true }]),
      record: { endpointing: { minMs: 500, maxMs: 1500 } },
    });
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    await h.run(20, true);
    // minMs (500) then maxMs - minMs (1000) more: the held words go to the brain, which re-prompts.
    await h.run(74, false);
    expect((await h.events()).filter((e) => e.type === 'agent.said')).toHaveLength(1);
    await h.run(200, false);
    const said = (await h.events()).filter((e) => e.type === 'agent.said').map((e) => e.data.text);
    expect(said[1]).toBe('Sorry, could you say that again?');
  });

  it('greets an outbound callee after they answer, not over them', async () => {
    h = harness({ direction: 'outbound', stt: new FakeStt([{ text: 'hello', final: true }]) });
    void h.session.begin();
    await h.settle();
    // The callee says "hello?" at once: no greeting while they speak.
    await h.run(25, true);
    expect(kinds(h.sent)).not.toContain('audio_out');
    await h.run(26, false);
    await h.run(60, false);
    const said = (await h.events()).filter((e) => e.type === 'agent.said').map((e) => e.data.text);
    expect(said).toEqual(['Hello there.']);
  });

  it('greets a silent outbound callee after a short silence', async () => {
    h = harness({ direction: 'outbound' });
    void h.session.begin();
    await h.settle();
    await h.run(70, false);
    expect(kinds(h.sent)).not.toContain('audio_out');
    await h.run(10, false);
    expect(kinds(h.sent)).toContain('audio_out');
  });

  it('transfers the caller through the provider after saying so, and ends the session as transferred', async () => {
    const transfers: string[] = [];
    h = harness({
      record: { transferTo: '+14155550199' },
      stt: new FakeStt([{ text: 'talk to a person', final: true }]),
      transfer: async (to) => {
        transfers.push(to);
      },
    });
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    await h.run(20, true);
    await h.run(26, false);
    for (let i = 0; i < 400 && h.ended.length === 0; i++) await h.step(false);
    expect(transfers).toEqual(['+14155550199']);
    expect(h.ended).toEqual(['transferred']);
    const events = await h.events();
    expect(
      events.find(
        (e) => e.type === 'agent.said' && e.data.text === 'Let me put you through to someone who can help.',
      )?.data.interrupted,
    ).toBe(false);
    expect(events.find((e) => e.type === 'call.transferring')?.data.to).toBe('+14155550199');
  });

  it('speaks a live say command and tells the caller when a transfer is impossible', async () => {
    h = harness({
      record: { transferTo: '+14155550199' },
      stt: new FakeStt([{ text: 'a person', final: true }]),
    });
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    h.session.sayCommand('Your table is ready.');
    await h.run(40, false);
    // No transfer function on this session (a native client): the agent says it cannot.
    await h.run(20, true);
    await h.run(26, false);
    await h.run(300, false);
    const said = (await h.events()).filter((e) => e.type === 'agent.said').map((e) => e.data.text as string);
    expect(said).toContain('Your table is ready.');
    expect(said.some((t) => t.startsWith("I'm sorry, I can't transfer you from here."))).toBe(true);
    expect(h.ended).toEqual([]);
  });

  it('says a filler line when a reply is slow to start, then the reply', async () => {
    let release!: () => void;
    const ready = new Promise<void>((r) => {
      release = r;
    });
    const slow: Brain = {
      kind: 'slow',
      phrases: () => [],
      greeting: () => 'Hello there.',
      async *reply(): AsyncIterable<BrainOutput> {
        await ready;
        yield { kind: 'text', text: 'Here is your answer.' };
      },
    };
    h = harness({
      brain: slow,
      fillerAfterMs: 1500,
      stt: new FakeStt([{ text: 'book a table', final: true }]),
    });
    void h.session.begin();
    await h.settle();
    await h.run(30, false);
    await h.run(20, true);
    await h.run(26, false);
    // The turn ended on the 25th silent frame: 1.5 s (75 frames) later without a reply, the filler.
    await h.run(73, false);
    let events = await h.events();
    expect(events.some((e) => e.type === 'agent.filler')).toBe(false);
    await h.run(1, false);
    await h.run(40, false);
    events = await h.events();
    expect(events.find((e) => e.type === 'agent.filler')?.data.text).toBe('One moment, please.');
    release();
    await h.run(100, false);
    const said = (await h.events()).filter((e) => e.type === 'agent.said').map((e) => e.data.text);
    expect(said).toEqual(['Hello there.', 'One moment, please.', 'Here is your answer.']);
  });
});

const recognisers = pocketsphinxAvailable().ok && sileroAvailable().ok && voicesAvailable.flite;
if (!recognisers)
  console.warn('\n!!! pocketsphinx, Silero or flite missing: speech-onset tests are SKIPPED\n');

/** A phone caller's words as the pipeline has them: flite at 8 kHz, through mu-law, up to 16 kHz. */
function phoneBand(text: string): Int16Array[] {
  const narrow = synthesize(text, { engine: 'flite', voice: 'slt', sampleRate: 8000 });
  const coded = new Uint8Array(narrow.length);
  encodeMulaw(narrow, coded);
  const decoded = new Int16Array(narrow.length);
  decodeMulaw(coded, decoded);
  const wide = new Resampler(8000, 16000).process(decoded);
  const frames: Int16Array[] = [];
  for (let i = 0; i < wide.length; i += FRAME) {
    const f = new Int16Array(FRAME);
    f.set(wide.subarray(i, Math.min(i + FRAME, wide.length)));
    frames.push(f);
  }
  return frames;
}

describe.skipIf(!recognisers && process.env.CI !== 'true')(
  'the start of a turn (real Silero and pocketsphinx)',
  () => {
    let h: ReturnType<typeof harness>;
    afterEach(() => h?.session.close('server_shutdown'));

    // Silero decides on 32 ms windows, calls send 20 ms frames: where the words fall against the
    // windows moves the detected start by up to ~300 ms for the same audio. The recogniser must
    // hear the words from their start whatever the alignment (the pre-roll covers the detector).
    it.each([0, 1, 2, 3, 4, 5, 6, 7])(
      'recognises the question after %i extra frames of silence',
      async (offset) => {
        const question = phoneBand('what are your opening hours');
        h = harness({ stt: new PocketsphinxStt(), detector: new SileroVad() });
        void h.session.begin();
        // The recogniser opens (loading its decoders) before the caller speaks.
        await eventually(
          async () => (await h.events()).some((e) => e.type === 'agent.ready'),
          30_000,
          'agent.ready',
        );
        // Ten seconds of line silence first, as while a greeting plays.
        await h.run(500 + offset, false);
        for (const frame of question) await h.step(frame);
        const find = async (type: string) => (await h.events()).find((e) => e.type === type);
        // The endpointing silence, frame by frame, until the detector closes the turn.
        for (let i = 0; i < 100 && !(await find('turn.completed')); i++) await h.step(false);
        expect(await find('turn.completed'), 'the detector closed the turn').toBeDefined();
        // Decoding finishes on the recogniser's thread, in its own time.
        const final = await eventually(() => find('transcript.final'), 30_000, 'the transcript');
        expect(final.data.text).toBe('what are your opening hours');
      },
      60_000,
    );
  },
);
