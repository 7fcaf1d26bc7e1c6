import type { SayOptions, SpeechHandle, SpeechResult, SpeechSource } from '../agent/agent.ts';
import type { AudioChunk, TextToSpeech } from '../agent/providers/types.ts';
import { Resampler } from '../audio/index.ts';
import type { Playout } from './playout.ts';

/** One piece of an utterance's audio in the playout stream, with the text it speaks. */
interface Segment {
  /** Position in the playout stream (`Playout.samplesEnqueued` when it was queued). */
  start: number;
  samples: number;
  text?: string;
  words?: { word: string; startMs: number; endMs: number }[];
  /** The audio, kept so a false interruption can resume what was not heard. */
  pcm: Int16Array;
}

export interface SpeechPlayerOptions {
  playout: Playout;
  pipelineRate: number;
  /** The agent's voice for text; without it, text cannot be spoken (audio still can). */
  tts: TextToSpeech | null;
  now: () => number;
  /** Tells clients and the timeline what the agent said. */
  onText?: (text: string, final: boolean) => void;
  onSaid?: (handle: PlayerSpeech, result: SpeechResult) => void;
  onError?: (handle: PlayerSpeech, err: unknown) => void;
  /** Drops everything queued on the playout and clears the provider's buffer. */
  clearOutput: () => void;
}

let nextId = 0;

function isText(v: unknown): v is string {
  return typeof v === 'string';
}

/**
 * An utterance in the speech player. Its audio comes from the voice (text) or straight from the
 * agent (audio chunks); it is queued on the playout behind earlier utterances and resolves
 * `done` with what the caller heard once its last sample is sent or it is cut short.
 */
export class PlayerSpeech implements SpeechHandle {
  readonly id = `sp${++nextId}`;
  readonly done: Promise<SpeechResult>;
  readonly started: Promise<number | null>;
  readonly allowInterruptions: boolean;
  private readonly controller = new AbortController();
  private resolveDone!: (r: SpeechResult) => void;
  private resolveStarted!: (t: number | null) => void;
  readonly segments: Segment[] = [];
  /** Everything produced has been queued. */
  produced = false;
  finished = false;
  /** Position of the first sample on the playout stream, once queued. */
  startAt = -1;
  /** When its first frame was sent (session clock), once sent. */
  firstFrameAt: number | null = null;
  /** Played samples frozen at interruption (the playout position moves past cleared audio). */
  private frozenPlayed = -1;
  result: SpeechResult | null = null;
  /** When the voice produced its first audio (session clock). */
  firstAudioAt: number | null = null;
  readonly createdAt: number;

  constructor(
    private readonly player: SpeechPlayer,
    readonly source: SpeechSource,
    opts: SayOptions & { allowInterruptions: boolean },
  ) {
    this.allowInterruptions = opts.allowInterruptions;
    this.createdAt = player.now();
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
    this.started = new Promise((r) => {
      this.resolveStarted = r;
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  cancel(): void {
    this.player.cancel(this, 'cancelled');
  }

  resume(): SpeechHandle | null {
    if (!this.result?.interrupted) return null;
    const played = this.playedSamples(this.player.playout.samplesSent);
    const chunks: AudioChunk[] = [];
    let offset = 0;
    for (const seg of this.segments) {
      const from = Math.max(0, played - offset);
      if (from < seg.samples) {
        chunks.push({
          pcm: seg.pcm.subarray(from),
          sampleRate: this.player.pipelineRate,
          text: from === 0 ? seg.text : undefined,
        });
      }
      offset += seg.samples;
    }
    if (chunks.length === 0) return null;
    return this.player.say(
      (async function* () {
        yield* chunks;
      })(),
      { allowInterruptions: this.allowInterruptions },
    );
  }

  /** Total samples queued so far. */
  get queuedSamples(): number {
    let n = 0;
    for (const s of this.segments) n += s.samples;
    return n;
  }

  playedSamples(position: number): number {
    if (this.frozenPlayed >= 0) return this.frozenPlayed;
    if (this.startAt < 0) return 0;
    return Math.max(0, Math.min(this.queuedSamples, position - this.startAt));
  }

  freeze(position: number): void {
    if (this.frozenPlayed < 0) this.frozenPlayed = this.playedSamples(position);
  }

  abort(): void {
    this.controller.abort();
  }

  markStarted(at: number | null): void {
    if (at !== null && this.firstFrameAt === null) this.firstFrameAt = at;
    this.resolveStarted(at);
  }

  finish(result: SpeechResult): void {
    if (this.finished) return;
    this.finished = true;
    this.result = result;
    this.markStarted(null);
    this.controller.abort();
    this.resolveDone(result);
  }

  /** The words heard up to `playedSamples`: word timings where given, else text spread over audio. */
  heardText(playedSamples: number, rate: number): string {
    const words: string[] = [];
    for (const seg of this.segments) {
      if (!seg.text) continue;
      const heard = playedSamples - (seg.start - this.startAt);
      if (heard <= 0) break;
      if (heard >= seg.samples) {
        words.push(seg.text.trim());
        continue;
      }
      const heardMs = (heard * 1000) / rate;
      if (seg.words && seg.words.length > 0) {
        for (const w of seg.words) if (w.endMs <= heardMs) words.push(w.word);
      } else {
        const parts = seg.text.trim().split(/\s+/);
        const durMs = (seg.samples * 1000) / rate;
        // A word counts as heard once the share of the audio it is spread over has played.
        const n = Math.floor((heardMs / durMs) * parts.length);
        words.push(...parts.slice(0, n));
      }
      break;
    }
    return words.filter(Boolean).join(' ');
  }
}

/**
 * Turns `say` into audio on the playout: text through the agent's voice (sentence by sentence,
 * as the voice yields it), audio chunks resampled to the pipeline rate, one utterance after
 * another. Tracks every utterance's played position so `done` reports what was heard, and
 * cuts them all off at once on barge-in.
 */
export class SpeechPlayer {
  readonly playout: Playout;
  readonly pipelineRate: number;
  readonly now: () => number;
  /** Utterances queued or playing, in order. */
  private readonly queue: PlayerSpeech[] = [];
  /** Producing happens one utterance at a time, in order. */
  private producing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: SpeechPlayerOptions) {
    this.playout = opts.playout;
    this.pipelineRate = opts.pipelineRate;
    this.now = opts.now;
  }

  /** The utterance the caller hears now (or will next). */
  get current(): PlayerSpeech | null {
    return this.queue[0] ?? null;
  }

  get speaking(): boolean {
    return this.queue.length > 0;
  }

  say(source: SpeechSource, opts: SayOptions & { allowInterruptions: boolean }): PlayerSpeech {
    const handle = new PlayerSpeech(this, source, opts);
    if (this.closed) {
      handle.finish({ interrupted: true, playedMs: 0, playedText: '', totalMs: 0 });
      return handle;
    }
    this.queue.push(handle);
    this.producing = this.producing.then(() => this.produce(handle));
    return handle;
  }

  /** Called by the playout after each frame: resolves utterances whose audio has all been sent. */
  advance(position: number): void {
    for (const h of this.queue) {
      if (h.startAt >= 0 && h.firstFrameAt === null && position > h.startAt) h.markStarted(this.now());
    }
    while (this.queue.length > 0) {
      const h = this.queue[0]!;
      if (!h.produced || h.startAt < 0 || position < h.startAt + h.queuedSamples) break;
      this.complete(h, false);
    }
  }

  /** Cuts off every queued utterance (barge-in, call end). Returns the one that was playing. */
  interruptAll(): PlayerSpeech | null {
    const first = this.queue[0] ?? null;
    const position = this.playout.samplesSent;
    for (const h of this.queue) {
      h.freeze(position);
      h.abort();
    }
    const handles = this.queue.splice(0);
    for (const h of handles) this.complete(h, true, false);
    return first;
  }

  /**
   * Cancels one utterance. Playing: its audio is cut (the provider's buffer cleared) and the
   * utterances queued after it move up, their audio queued again from the start.
   */
  cancel(handle: PlayerSpeech, _why: string): void {
    if (handle.finished) return;
    const i = this.queue.indexOf(handle);
    const playing = i === 0 && handle.startAt >= 0;
    handle.freeze(this.playout.samplesSent);
    handle.abort();
    if (i >= 0) this.queue.splice(i, 1);
    this.complete(handle, true, false);
    if (!playing) return;
    this.opts.clearOutput();
    for (const h of this.queue) {
      if (h.startAt < 0) continue;
      h.startAt = this.playout.samplesEnqueued;
      for (const seg of h.segments) {
        seg.start = this.playout.samplesEnqueued;
        this.playout.enqueue(seg.pcm);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.interruptAll();
  }

  private complete(h: PlayerSpeech, interrupted: boolean, shift = true): void {
    if (h.finished) return;
    if (shift && this.queue[0] === h) this.queue.shift();
    const rate = this.pipelineRate;
    const played = h.playedSamples(this.playout.samplesSent);
    const result: SpeechResult = {
      interrupted,
      playedMs: Math.round((played * 1000) / rate),
      playedText: h.heardText(played, rate),
      totalMs: Math.round((h.queuedSamples * 1000) / rate),
    };
    h.finish(result);
    this.opts.onSaid?.(h, result);
  }

  private async produce(h: PlayerSpeech): Promise<void> {
    if (h.finished) return;
    let resampler: Resampler | null = null;
    let resamplerRate = 0;
    try {
      for await (const chunk of this.chunks(h)) {
        if (h.finished || h.signal.aborted) break;
        h.firstAudioAt ??= this.now();
        let pcm = chunk.pcm;
        if (chunk.sampleRate !== this.pipelineRate) {
          if (resampler === null || resamplerRate !== chunk.sampleRate) {
            resampler = new Resampler(chunk.sampleRate, this.pipelineRate);
            resamplerRate = chunk.sampleRate;
          }
          pcm = resampler.process(chunk.pcm).slice();
        } else {
          pcm = pcm.slice();
        }
        if (pcm.length === 0) continue;
        const start = this.playout.samplesEnqueued;
        if (h.startAt < 0) h.startAt = start;
        h.segments.push({ start, samples: pcm.length, text: chunk.text, words: chunk.words, pcm });
        if (chunk.text) this.opts.onText?.(chunk.text, false);
        this.playout.enqueue(pcm);
      }
    } catch (err) {
      if (!h.finished) this.opts.onError?.(h, err);
    }
    h.produced = true;
    if (h.finished) return;
    if (h.startAt < 0 || h.signal.aborted) {
      // Nothing to play (or cancelled before any audio): done now.
      const i = this.queue.indexOf(h);
      if (i >= 0) this.queue.splice(i, 1);
      this.complete(h, h.signal.aborted, false);
      return;
    }
    this.advance(this.playout.samplesSent);
  }

  private async *chunks(h: PlayerSpeech): AsyncIterable<AudioChunk> {
    const source = h.source;
    if (isText(source)) {
      yield* this.voice().synthesize(source, h.signal);
      return;
    }
    // An iterable of text pieces or of audio chunks: look at the first item to know which.
    const it = source[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) return;
    if (isText(first.value)) {
      const rest = it as AsyncIterator<string>;
      const text = (async function* () {
        yield first.value as string;
        for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
      })();
      yield* this.voice().synthesize(text, h.signal);
      return;
    }
    yield first.value as AudioChunk;
    const rest = it as AsyncIterator<AudioChunk>;
    for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
  }

  private voice(): TextToSpeech {
    if (!this.opts.tts) throw new Error('this agent has no voice to speak text with');
    return this.opts.tts;
  }
}
