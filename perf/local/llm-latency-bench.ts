/**
 * LLM-agent latency benchmark: the `llm` brain (Deepgram live STT → OpenAI-compatible streaming
 * chat → OpenAI speech) against local fakes of the three vendors that answer after fixed delays,
 * so what the caller waits beyond the sum of those delays is the platform's own time.
 *
 *   npm run bench:llm                                # 1 and 200 conversations (90 s / 30 s windows)
 *   npm run bench:llm -- --quick                     # 1 and 10 conversations, 8 s windows
 *   npm run bench:llm -- --calls 1,50,200 --seconds 60 --vad both
 *
 * Three processes share the machine: the vendor fakes (tests/fakes/deepgram.ts answering
 * `Finalize` after `--stt-ms`, tests/fakes/openai.ts holding the first chat token `--llm-ms` and
 * the first speech bytes `--tts-ms`), core (`Core` with the default registry on a MemoryStore,
 * `DEEPGRAM_BASE_URL` / `OPENAI_BASE_URL` pointing at the fakes, one `llm` agent with a short
 * prompt) and this process, the callers. Each caller speaks the native `/realtime/voice`
 * protocol, PCM16 at 16 kHz: it waits for the greeting, then loops: a flite phrase (made once
 * per run) frame by frame in real time, silence until the reply has played (`agent.said`), a
 * pause, the phrase again (the caller logic is `perf/scenarios/conversation.ts`).
 *
 * Per turn the figure is `turnMs − endpointingMs` from the `turn.latency` event: the server's
 * time from its end-of-turn decision (after the endpointing silence) to the first agent audio
 * frame sent, i.e. what the caller waits after the endpoint. Its distance from the sum of the
 * fakes' delays (150 + 300 + 100 = 550 ms by default) is the overhead: socket hops to the
 * fakes, the adapters, sentence splitting, resampling, the speech queue and playout, and the
 * fakes' own timer lateness. Each concurrency also runs with zero delays (the floor: overhead
 * against nothing). Silero is the default registry's VAD; when it saturates the server (CPU,
 * event-loop lag or late reply frames) the run is repeated with the energy VAD, labelled so.
 * Server times are `Date.now()` milliseconds, so server-side figures are whole ms.
 *
 * Everything goes to 127.0.0.1; every run is bounded in time; child processes are killed on any
 * exit. `--serve <fakes|core>` is a child's side (started by this script, not by hand).
 */

import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type Subprocess, spawn } from 'bun';
import { freePort } from '../../tests/support/services.ts';
import { synthesize } from '../../tests/support/voices.ts';
import {
  Caller,
  type CallerIntent,
  FRAME_MS,
  FRAME_SAMPLES,
  replyMatches,
  type Spread,
  spread,
  startMessage,
  stopMessage,
  subprotocols,
  type TurnRecord,
} from '../scenarios/conversation.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SELF = 'perf/local/llm-latency-bench.ts';
const SECRET = 'bench-secret-0123456789abcdef';
const API_KEY = 'bench-realtime-key-0123456789';
const AGENT_ID = 'bench-llm';
const CLK_TCK = 100;
/** Frames a late generator may send back to back per call; beyond that it skips (and says so). */
const MAX_CATCH_UP = 3;
/** Unsent bytes per socket before the generator stops queueing (the server is not reading). */
const MAX_BACKLOG_BYTES = 64 * 1024;
/** The check's tolerance: end of speech → first audio within this of the delays' sum. */
export const TOLERANCE_MS = 15;

/** The fixed delays of the fakes, ms. */
export interface Delays {
  /** Deepgram: `Finalize` → its `from_finalize` result. */
  sttMs: number;
  /** OpenAI chat: request → first token. */
  llmMs: number;
  /** OpenAI speech: request → first audio bytes. */
  ttsMs: number;
}

/** The issue's delays: STT final 150 ms, LLM first token 300 ms, TTS first audio 100 ms. */
export const ISSUE_DELAYS: Delays = { sttMs: 150, llmMs: 300, ttsMs: 100 };
export const ZERO_DELAYS: Delays = { sttMs: 0, llmMs: 0, ttsMs: 0 };

const sumOf = (d: Delays) => d.sttMs + d.llmMs + d.ttsMs;

/** The reply the fake model streams: one sentence, complete in its first token. */
const REPLY = 'We open at nine every day.';
/** The reply's audio from the fake voice: 300 ms at OpenAI's 24 kHz. */
const REPLY_SAMPLES = 7200;

/** What every caller says (flite), what the fake recogniser hears, and the reply it leads to. */
export const LATENCY_INTENT: CallerIntent = {
  name: 'hours',
  ask: 'what are your opening hours',
  expect: REPLY,
};

/** The benchmark's agent: the `llm` brain with its default vendors and a short prompt. */
export function llmAgentRecord(): Record<string, unknown> {
  return {
    name: 'Bench llm agent',
    brain: 'llm',
    language: 'en-US',
    prompt: 'You answer questions about Bella Pizza in one short sentence.',
    greeting: 'Hello.',
    intents: [],
    tools: [],
    endpointing: { minMs: 500, maxMs: 3000 },
    bargeIn: true,
  };
}

export type VadKind = 'silero' | 'energy';

// ------------------------------------------------------------------------------------------
// Child processes

/** Exits when the parent is gone, even if it was killed without a chance to clean up. */
function followParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0));
}

/** The vendor fakes with fixed delays; prints their addresses on one `bench-fakes=` line. */
async function serveFakes(delays: Delays): Promise<void> {
  const { startFakeDeepgram } = await import('../../tests/fakes/deepgram.ts');
  const { startFakeOpenAi } = await import('../../tests/fakes/openai.ts');
  const deepgram = startFakeDeepgram();
  deepgram.finalizeDelayMs = delays.sttMs;
  deepgram.finalizeText = LATENCY_INTENT.ask;
  deepgram.keepAudio = false;
  const openai = startFakeOpenAi({
    chatDefault: {
      firstTokenDelayMs: delays.llmMs,
      steps: [{ text: `${REPLY} ` }, { finish: 'stop' }, { done: true }],
    },
    speechDefault: { firstByteDelayMs: delays.ttsMs, samples: REPLY_SAMPLES },
  });
  const address: FakesAddress = {
    deepgramUrl: deepgram.url,
    deepgramKey: deepgram.apiKey,
    openaiUrl: openai.baseUrl,
    openaiKey: openai.apiKey ?? '',
  };
  console.log(`bench-fakes=${JSON.stringify(address)}`);
  followParent();
}

interface FakesAddress {
  deepgramUrl: string;
  deepgramKey: string;
  openaiUrl: string;
  openaiKey: string;
}

/**
 * Core as `core/main.ts` runs it (MemoryStore, no Redis) with the benchmark's agent seeded and
 * the vendor settings from the environment; `energy` drops the Silero entry from the registry.
 * Prints the VAD conversations get on a `bench-vad=` line.
 */
async function serveCore(port: number, vad: VadKind): Promise<void> {
  const { Core } = await import('../../core/app.ts');
  const { loadConfig } = await import('../../core/config/index.ts');
  const { createLogger } = await import('../../core/observability/index.ts');
  const { startHttpServer } = await import('../../core/server/index.ts');
  const { MemoryStore, keys } = await import('../../core/store/index.ts');
  const { defaultRegistry, warmOfflineProviders } = await import('../../core/agent/default-registry.ts');
  const { ModelVad } = await import('../../core/agent/vad.ts');
  const config = await loadConfig({
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    REALTIME_WS_SECRET: SECRET,
    REALTIME_API_KEY: API_KEY,
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
    SESSION_IDLE_TIMEOUT_SEC: '300',
    TELEPHONY_GLOBAL_MAX_CONCURRENCY: '10000',
    // Every caller comes from 127.0.0.1: let a whole batch be mid-setup at once.
    WS_MAX_PENDING_PER_ADDRESS: '100000',
  });
  const log = createLogger({ level: config.LOG_LEVEL, service: 'core' });
  const store = new MemoryStore();
  await store.set(keys.agent(AGENT_ID), JSON.stringify(llmAgentRecord()));
  const registry = defaultRegistry();
  if (vad === 'energy') registry.vad.delete('silero');
  else warmOfflineProviders();
  const core = new Core({ config, store, log, registry });
  startHttpServer({ port, hostname: '127.0.0.1', plane: core, log });
  const probe = registry.createVad(16000, 500, process.env);
  console.log(`bench-vad=${probe instanceof ModelVad ? 'silero' : 'energy'}`);
  probe.close?.();
  followParent();
}

// ------------------------------------------------------------------------------------------
// Caller audio

/** The caller's phrase as 20 ms PCM16 frames, and one frame of silence. */
export interface Clip {
  frames: Uint8Array<ArrayBuffer>[];
  silence: Uint8Array<ArrayBuffer>;
}

/** Speaks the phrase with flite `slt` at 16 kHz, trims its silences, and cuts it into frames. */
export function makeClip(text = LATENCY_INTENT.ask): Clip {
  const pcm = synthesize(text, { engine: 'flite', voice: 'slt', sampleRate: 16000 });
  let first = 0;
  let last = pcm.length - 1;
  while (first < last && Math.abs(pcm[first]!) < 300) first++;
  while (last > first && Math.abs(pcm[last]!) < 300) last--;
  const words = pcm.subarray(first, last + 1);
  const frames: Uint8Array<ArrayBuffer>[] = [];
  for (let at = 0; at < words.length; at += FRAME_SAMPLES) {
    const frame = new Int16Array(FRAME_SAMPLES);
    frame.set(words.subarray(at, Math.min(words.length, at + FRAME_SAMPLES)));
    frames.push(new Uint8Array(frame.buffer));
  }
  return { frames, silence: new Uint8Array(FRAME_SAMPLES * 2) };
}

// ------------------------------------------------------------------------------------------
// One run: fakes, a server, N conversations, a measured window

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

async function scrapeLagP99Ms(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_p99_seconds '));
  return line ? Number(line.split(' ')[1]) * 1000 : Number.NaN;
}

/** Resolves true once `cond` holds, polling every `everyMs`, or false once `capMs` has passed. */
async function until(cond: () => boolean, capMs: number, everyMs = 50): Promise<boolean> {
  const deadline = performance.now() + capMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(everyMs);
  }
  return true;
}

/** Whether the server at `base` answers `/health` within `capMs`. */
async function healthy(base: string, capMs: number): Promise<boolean> {
  const deadline = performance.now() + capMs;
  while (performance.now() < deadline) {
    try {
      if ((await fetch(`${base}/health`)).ok) return true;
    } catch {
      // Not listening yet.
    }
    await Bun.sleep(100);
  }
  return false;
}

const decoder = new TextDecoder();

/**
 * The first match of `pattern` on a child's stdout (null if it exits first); the rest of its
 * output is read and dropped, so a full pipe never blocks it.
 */
async function marker(
  proc: Subprocess<'ignore', 'pipe', 'inherit'>,
  pattern: RegExp,
): Promise<string | null> {
  const reader = proc.stdout.getReader();
  let text = '';
  let found: RegExpExecArray | null = null;
  while (!found) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
    found = pattern.exec(text);
  }
  void (async () => {
    while (!(await reader.read()).done) {
      // Dropped.
    }
  })().catch(() => {});
  return found?.[1] ?? null;
}

/** Children this process started: killed on any exit, so a failed run leaves none behind. */
const children = new Set<Subprocess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function child(args: string[], env: Record<string, string | undefined>) {
  const proc = spawn([process.execPath, 'run', SELF, ...args], {
    cwd: ROOT,
    env,
    stdout: 'pipe',
    stderr: 'inherit',
  });
  children.add(proc);
  return proc;
}

async function stop(proc: Subprocess): Promise<void> {
  proc.kill('SIGTERM');
  await Promise.race([proc.exited, Bun.sleep(3000)]);
  proc.kill('SIGKILL');
  children.delete(proc);
}

export interface LatencyRunOptions {
  delays: Delays;
  calls: number;
  vad: VadKind;
  clip: Clip;
  /** Measured window after the warm-up; ignored when `maxTurns` bounds the run instead. */
  windowMs: number;
  warmupMs: number;
  /** Each conversation stops after this many turns, and the whole run is summarised. */
  maxTurns?: number;
  /** A reply not finished this long after the end of speech counts as missed. */
  turnTimeoutMs: number;
}

export interface LatencyRunResult {
  delays: Delays;
  /** The delays' sum: what an ideal platform adds nothing to. */
  sumMs: number;
  calls: number;
  /** The VAD conversations ran with, as the server reported it. */
  vad: string;
  /** Conversations that got their first turn going. */
  connected: number;
  /** Turns whose speech ended in the window, replies finished, replies with the expected words. */
  turns: number;
  completed: number;
  rightReplies: number;
  /** Server: `turnMs − endpointingMs`, the end-of-turn decision → first agent frame sent. */
  measured: Spread;
  /** `measured − sumMs`. */
  overhead: Spread;
  /** Each stage's time beyond its fake's delay, and the rest (speech queue, playout), ms. */
  stages: { stt: Spread; llm: Spread; tts: Spread; rest: Spread };
  /** Caller: end of speech → first agent frame heard, less the endpointing silence. */
  callerLessEndpointing: Spread;
  serverCpuPct: number;
  fakesCpuPct: number;
  generatorCpuPct: number;
  serverLagP99Ms: number;
  generatorLagP99Ms: number;
  /** Caller frames the generator could not send on time (late beyond catch-up, or socket full). */
  generatorMisses: number;
  generatorFrames: number;
  /** Reply frames heard more than one frame behind the 20 ms schedule of their reply. */
  lateReplyFrames: number;
  replyFrames: number;
  /** 1-minute load average, sampled each second of the window: mean and max. */
  load: { mean: number; max: number };
  errors: string[];
  windowS: number;
}

interface Conversation {
  caller: Caller;
  ws: WebSocket;
  /** The turn whose reply frames are being timed, its first frame's arrival, frames so far. */
  reply: { turn: TurnRecord | null; firstAt: number; frames: number };
  /** The greeting's first frame arrived: the session is set up. */
  greeted: boolean;
}

/**
 * Calls set up together, each waiting for its greeting before the next batch: a burst of
 * sessions (each loading its VAD and opening its recogniser socket) is call setup, not the
 * steady state this benchmark measures.
 */
const RAMP_BATCH = 10;

/** Starts the fakes and a server, runs `calls` conversations over a window, and measures them. */
export async function runLatency(o: LatencyRunOptions): Promise<LatencyRunResult> {
  const fakes = child(['--serve', 'fakes', ...delayArgs(o.delays)], process.env);
  let server: Subprocess<'ignore', 'pipe', 'inherit'> | null = null;
  const conversations: Conversation[] = [];
  try {
    const fakesLine = await marker(fakes, /bench-fakes=(\{.*\})\n/);
    if (!fakesLine) throw new Error('the vendor fakes did not start');
    const addr = JSON.parse(fakesLine) as FakesAddress;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = child(['--serve', 'core', '--port', String(port), '--vad', o.vad], {
      ...process.env,
      OPENAI_API_KEY: addr.openaiKey,
      OPENAI_BASE_URL: addr.openaiUrl,
      DEEPGRAM_API_KEY: addr.deepgramKey,
      DEEPGRAM_BASE_URL: addr.deepgramUrl,
    });
    if (!(await healthy(base, 20_000))) throw new Error('core did not start');
    const vad = (await marker(server, /bench-vad=(\w+)/)) ?? 'unknown';

    const runId = Date.now().toString(36);
    const connectErrors: string[] = [];
    let lateReplyFrames = 0;
    let replyFrames = 0;
    let measuring = o.maxTurns !== undefined;
    for (let i = 0; i < o.calls; i += RAMP_BATCH) {
      const from = conversations.length;
      const batch = Array.from({ length: Math.min(RAMP_BATCH, o.calls - i) }, async (_, k) => {
        const n = i + k;
        const caller = new Caller({
          clipFrames: [o.clip.frames.length],
          intents: [LATENCY_INTENT],
          expectsGreeting: true,
          replyEnd: 'said',
          // 0 to 2 s of silence before the first turn, spread evenly: calls do not speak in step.
          leadFrames: o.calls === 1 ? 0 : Math.floor((n * 100) / o.calls),
          turnTimeoutMs: o.turnTimeoutMs,
          greetingTimeoutMs: 60_000,
          maxTurns: o.maxTurns,
        });
        const c: Conversation = {
          caller,
          ws: new WebSocket(`ws://127.0.0.1:${port}/realtime/voice`, subprotocols(API_KEY)),
          reply: { turn: null, firstAt: 0, frames: 0 },
          greeted: false,
        };
        c.ws.binaryType = 'arraybuffer';
        c.ws.onmessage = (event) => {
          const now = performance.now();
          if (typeof event.data === 'string') {
            caller.onText(event.data, now);
            return;
          }
          c.greeted = true;
          caller.onAudio(now);
          // Reply frames leave two at once (the playout's lead), then one per 20 ms.
          const turn = caller.turns.at(-1);
          if (!turn || turn.firstAudioAt === null) return;
          if (c.reply.turn !== turn) c.reply = { turn, firstAt: now, frames: 0 };
          const dueAt = c.reply.firstAt + Math.max(0, c.reply.frames - 1) * FRAME_MS;
          c.reply.frames++;
          if (!measuring) return;
          replyFrames++;
          if (now > dueAt + FRAME_MS) lateReplyFrames++;
        };
        try {
          await new Promise<void>((resolve, reject) => {
            c.ws.onopen = () => resolve();
            c.ws.onerror = () => reject(new Error('connection failed'));
            c.ws.onclose = (e) => reject(new Error(`closed during setup (${e.code})`));
          });
          c.ws.onerror = null;
          c.ws.onclose = null;
          c.ws.send(startMessage(`bench-${runId}-${n}`, AGENT_ID));
          conversations.push(c);
        } catch (err) {
          connectErrors.push(`call ${n}: ${(err as Error).message}`);
        }
      });
      await Promise.all(batch);
      const ramped = conversations.slice(from);
      await until(() => ramped.every((c) => c.greeted || c.caller.ended), 30_000);
    }

    // The generator's own event-loop lag: late frames from here would look like server delay.
    const genLag = monitorEventLoopDelay({ resolution: 5 });
    genLag.enable();
    // Every call sends one frame per 20 ms, in four groups 5 ms apart, on a drift-free grid.
    const groups = 4;
    const slotMs = FRAME_MS / groups;
    const seq = conversations.map(() => 0);
    let misses = 0;
    let sentFrames = 0;
    let running = true;
    const t0 = performance.now();
    const sendGroup = (g: number, frameIndex: number) => {
      const now = performance.now();
      for (let i = g; i < conversations.length; i += groups) {
        const c = conversations[i]!;
        if (c.ws.readyState !== WebSocket.OPEN || c.caller.ended) continue;
        if (frameIndex - seq[i]! >= MAX_CATCH_UP) {
          const skipped = frameIndex - seq[i]! - MAX_CATCH_UP + 1;
          if (measuring) misses += skipped;
          seq[i] = frameIndex - MAX_CATCH_UP + 1;
        }
        while (seq[i]! <= frameIndex) {
          seq[i]!++;
          const choice = c.caller.next(now);
          if (measuring) sentFrames++;
          if (c.ws.bufferedAmount > MAX_BACKLOG_BYTES) {
            if (measuring) misses++;
            continue;
          }
          c.ws.send(choice.kind === 'speech' ? o.clip.frames[choice.frame]! : o.clip.silence);
        }
      }
    };
    const sendLoop = (async () => {
      let done = -1;
      while (running) {
        const slot = Math.floor((performance.now() - t0) / slotMs);
        for (let s = Math.max(done + 1, slot - groups + 1); s <= slot; s++)
          sendGroup(s % groups, Math.floor(s / groups));
        done = slot;
        const wait = t0 + (slot + 1) * slotMs - performance.now();
        await Bun.sleep(Math.max(wait, 0));
      }
    })();

    // Warm-up: every call past its greeting and, for a window, past its first reply (the first
    // requests open the connections to the vendors), then a little more; then the window.
    const callers = conversations.map((c) => c.caller);
    await until(() => callers.every((c) => c.talking), 120_000);
    if (!o.maxTurns)
      await until(() => callers.every((c) => c.done || c.turns.some((t) => t.completed)), 60_000);
    const loads: number[] = [];
    const loadTimer = setInterval(() => loads.push(loadavg()[0]!), 1000);
    let windowStart = Number.NEGATIVE_INFINITY;
    let windowEnd = Number.POSITIVE_INFINITY;
    if (!o.maxTurns) await Bun.sleep(o.warmupMs);
    await scrapeLagP99Ms(base); // resets the server's lag histogram: the window starts now
    genLag.reset();
    measuring = true;
    const started = performance.now();
    const cpu0 = { server: cpuSeconds(server.pid), fakes: cpuSeconds(fakes.pid) };
    const gen0 = process.cpuUsage();
    loads.push(loadavg()[0]!);
    if (o.maxTurns) {
      await until(() => callers.every((c) => c.done), o.maxTurns * (o.turnTimeoutMs + 15_000));
    } else {
      windowStart = started;
      await Bun.sleep(o.windowMs);
      windowEnd = performance.now();
    }
    const wallS = (performance.now() - started) / 1000;
    const cpu1 = { server: cpuSeconds(server.pid), fakes: cpuSeconds(fakes.pid) };
    const gen = process.cpuUsage(gen0);
    const serverLagP99Ms = await scrapeLagP99Ms(base);
    const generatorLagP99Ms = genLag.percentile(99) / 1e6;
    genLag.disable();
    clearInterval(loadTimer);
    measuring = false;
    for (const c of callers) c.stop();
    // Turns that ended in the window get to finish (bounded by their timeout).
    await until(() => callers.every((c) => c.done), o.turnTimeoutMs + 2000);
    running = false;
    await sendLoop;

    const sumMs = sumOf(o.delays);
    const inWindow = callers
      .flatMap((c) => c.turns)
      .filter((t) => t.endOfSpeechAt >= windowStart && t.endOfSpeechAt < windowEnd);
    const latencies = inWindow.flatMap((t) => (t.latency ? [t.latency] : []));
    const measured = latencies.map((l) => l.turnMs - l.endpointingMs);
    const stageOf = (l: (typeof latencies)[number]) => ({
      stt: l.sttMs - o.delays.sttMs,
      llm: l.llmFirstTokenMs - o.delays.llmMs,
      tts: (l.ttsFirstAudioMs ?? Number.NaN) - o.delays.ttsMs,
      rest: l.turnMs - l.endpointingMs - l.sttMs - l.llmFirstTokenMs - (l.ttsFirstAudioMs ?? Number.NaN),
    });
    const stages = latencies.map(stageOf);
    return {
      delays: o.delays,
      sumMs,
      calls: o.calls,
      vad,
      connected: callers.filter((c) => c.turns.length > 0).length,
      turns: inWindow.length,
      completed: inWindow.filter((t) => t.completed).length,
      rightReplies: inWindow.filter(replyMatches).length,
      measured: spread(measured),
      overhead: spread(measured.map((m) => m - sumMs)),
      stages: {
        stt: spread(stages.map((s) => s.stt)),
        llm: spread(stages.map((s) => s.llm)),
        tts: spread(stages.map((s) => s.tts)),
        rest: spread(stages.map((s) => s.rest)),
      },
      callerLessEndpointing: spread(
        inWindow
          .filter((t) => t.firstAudioAt !== null && t.latency)
          .map((t) => t.firstAudioAt! - t.endOfSpeechAt - t.latency!.endpointingMs),
      ),
      serverCpuPct: ((cpu1.server - cpu0.server) / wallS) * 100,
      fakesCpuPct: ((cpu1.fakes - cpu0.fakes) / wallS) * 100,
      generatorCpuPct: ((gen.user + gen.system) / 1e6 / wallS) * 100,
      serverLagP99Ms,
      generatorLagP99Ms,
      generatorMisses: misses,
      generatorFrames: sentFrames,
      lateReplyFrames,
      replyFrames,
      load: { mean: loads.reduce((a, b) => a + b, 0) / loads.length, max: Math.max(...loads) },
      errors: [...connectErrors, ...callers.flatMap((c) => c.errors)],
      windowS: wallS,
    };
  } finally {
    for (const c of conversations) {
      if (c.ws.readyState !== WebSocket.OPEN) continue;
      c.ws.send(stopMessage());
      c.ws.close();
    }
    if (server) await stop(server);
    await stop(fakes);
  }
}

function delayArgs(d: Delays): string[] {
  return ['--stt-ms', String(d.sttMs), '--llm-ms', String(d.llmMs), '--tts-ms', String(d.ttsMs)];
}

/**
 * Whether a run overloaded the server: a core busy ≥ 90 % of the time, an event loop late by
 * more than a frame at p99, or more than 1 % of reply frames late.
 */
export function saturated(r: LatencyRunResult): boolean {
  return (
    r.serverCpuPct >= 90 ||
    r.serverLagP99Ms > FRAME_MS ||
    r.lateReplyFrames > 0.01 * Math.max(1, r.replyFrames)
  );
}

// ------------------------------------------------------------------------------------------
// Report

const f = (n: number, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : 'n/a';
const signed = (n: number) => (Number.isFinite(n) && n > 0 ? `+${f(n)}` : f(n));
const spreadCell = (s: Spread, show: (n: number) => string = f) =>
  `${show(s.p50)} / ${show(s.p99)} / ${show(s.max)}`;

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** One measured concurrency: the delayed run and its zero-delay floor, same VAD. */
export interface Pair {
  delayed: LatencyRunResult;
  floor: LatencyRunResult;
}

const verdict = (v: number) => (v <= TOLERANCE_MS ? 'yes' : '**no**');

/** The check's table: a row per concurrency (and VAD), overheads against the sum and the floor. */
export function checkTable(pairs: Pair[]): string {
  const sum = pairs[0] ? pairs[0].delayed.sumMs : 0;
  return table(
    [
      'concurrent conversations',
      'VAD',
      'turns (delays / zero)',
      `measured end of turn → first audio sent, p50 / p99 / max (fakes sum ${sum} ms)`,
      `**overhead vs ${sum} ms** p50 / p99 / max`,
      'floor: overhead with zero delays p50 / p99 / max',
      `within ${TOLERANCE_MS} ms at p50 / p99`,
    ],
    pairs.map(({ delayed: d, floor: z }) => [
      f(d.calls),
      d.vad,
      `${f(d.turns)} / ${f(z.turns)}`,
      `${spreadCell(d.measured)} ms`,
      `**${spreadCell(d.overhead, signed)} ms**`,
      `${spreadCell(z.overhead, signed)} ms`,
      `${verdict(d.overhead.p50)} / ${verdict(d.overhead.p99)}`,
    ]),
  );
}

/** Where the overhead goes (delayed runs): each stage beyond its fake's delay, p50 / p99. */
export function stageTable(pairs: Pair[]): string {
  const p = (s: Spread) => `${signed(s.p50)} / ${signed(s.p99)}`;
  return table(
    [
      'concurrent',
      'VAD',
      'STT: finalize → final, beyond the delay',
      'LLM: brain start → first text, beyond the delay',
      'TTS: first text → first audio, beyond the delay',
      'rest: speech queue and playout to the first frame sent',
      'caller: end of speech → first frame heard, less endpointing (VAD hangover and socket hops included)',
    ],
    pairs.map(({ delayed: d }) => [
      f(d.calls),
      d.vad,
      `${p(d.stages.stt)} ms`,
      `${p(d.stages.llm)} ms`,
      `${p(d.stages.tts)} ms`,
      `${p(d.stages.rest)} ms`,
      `${f(d.callerLessEndpointing.p50)} / ${f(d.callerLessEndpointing.p99)} ms`,
    ]),
  );
}

/** The conditions of each run: CPU, lag, late frames, load, errors. */
export function conditionsTable(pairs: Pair[]): string {
  const runs = pairs.flatMap((p) => [p.delayed, p.floor]);
  return table(
    [
      'concurrent',
      'VAD',
      'fakes',
      'CPU: core / fakes / callers',
      'event-loop lag p99: core / callers',
      'caller frames sent late or dropped',
      'reply frames heard > 20 ms late',
      'load average (1 min) mean / max',
      'errors / replies missed',
    ],
    runs.map((r) => [
      f(r.calls),
      r.vad,
      r.sumMs === 0 ? 'zero delays' : `${r.delays.sttMs} / ${r.delays.llmMs} / ${r.delays.ttsMs} ms`,
      `${f(r.serverCpuPct)} / ${f(r.fakesCpuPct)} / ${f(r.generatorCpuPct)} %`,
      `${f(r.serverLagP99Ms, 1)} / ${f(r.generatorLagP99Ms, 1)} ms`,
      `${f(r.generatorMisses)} of ${f(r.generatorFrames)}`,
      `${f(r.lateReplyFrames)} of ${f(r.replyFrames)}`,
      `${f(r.load.mean, 2)} / ${f(r.load.max, 2)}`,
      `${f(r.errors.length)} / ${f(r.turns - r.completed)}`,
    ]),
  );
}

function machine(command: string): string {
  const cpu = cpus();
  const [l1, l5, l15] = loadavg();
  return [
    `Machine: ${cpu[0]?.model ?? 'cpu'}, ${cpu.length} cores, ${f(totalmem() / 1024 ** 3, 1)} GiB RAM; Bun ${Bun.version}`,
    `Command: \`${command}\``,
    `Load average at start: ${l1?.toFixed(2)} / ${l5?.toFixed(2)} / ${l15?.toFixed(2)} (1 / 5 / 15 min); fakes, core and callers share the machine`,
  ].join('\n');
}

// ------------------------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      serve: { type: 'string' },
      port: { type: 'string' },
      vad: { type: 'string', default: 'auto' },
      quick: { type: 'boolean', default: false },
      calls: { type: 'string' },
      seconds: { type: 'string' },
      'single-seconds': { type: 'string' },
      'stt-ms': { type: 'string', default: String(ISSUE_DELAYS.sttMs) },
      'llm-ms': { type: 'string', default: String(ISSUE_DELAYS.llmMs) },
      'tts-ms': { type: 'string', default: String(ISSUE_DELAYS.ttsMs) },
    },
  });
  const delays: Delays = {
    sttMs: Number(args['stt-ms']),
    llmMs: Number(args['llm-ms']),
    ttsMs: Number(args['tts-ms']),
  };
  if (args.serve === 'fakes') return serveFakes(delays);
  if (args.serve === 'core') return serveCore(Number(args.port), args.vad === 'energy' ? 'energy' : 'silero');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

  const quick = args.quick;
  const calls = (args.calls ?? (quick ? '1,10' : '1,200'))
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const windowMs = Number(args.seconds ?? (quick ? 8 : 30)) * 1000;
  // One conversation makes a turn every ~4 s: a longer window gives its p99 some turns to rank.
  const singleWindowMs = Number(args['single-seconds'] ?? args.seconds ?? (quick ? 8 : 90)) * 1000;
  const warmupMs = quick ? 1000 : 3000;
  const vadChoice = args.vad as 'auto' | 'both' | VadKind;
  const command = `bun ${SELF} ${process.argv.slice(2).join(' ')}`.trim();
  const clip = makeClip();
  const sum = sumOf(delays);

  console.log(`\n## LLM agent: end of speech → first audio with fixed-delay vendor fakes\n`);
  console.log(machine(command));
  console.log(
    `Fakes: Deepgram answers \`Finalize\` after ${delays.sttMs} ms, the chat's first token comes after ${delays.llmMs} ms, ` +
      `the speech's first bytes after ${delays.ttsMs} ms (sum ${sum} ms); the floor runs the same with zero delays. ` +
      `Native /realtime/voice, PCM16 16 kHz; each caller says "${LATENCY_INTENT.ask}" (flite slt, ${clip.frames.length * FRAME_MS} ms), ` +
      `then silence until the reply (300 ms of audio) has played; ${windowMs / 1000} s window (${singleWindowMs / 1000} s for one conversation) ` +
      `after every call is past its first reply and ${warmupMs / 1000} s of warm-up. Measured: \`turnMs − endpointingMs\` from \`turn.latency\` (server, whole ms).\n`,
  );

  const pairs: Pair[] = [];
  const runPair = async (n: number, vad: VadKind) => {
    const base = {
      calls: n,
      vad,
      clip,
      windowMs: n === 1 ? singleWindowMs : windowMs,
      warmupMs,
      turnTimeoutMs: 10_000,
    };
    const delayed = await runLatency({ ...base, delays });
    const floor = await runLatency({ ...base, delays: ZERO_DELAYS });
    for (const r of [delayed, floor]) {
      console.error(
        `${n} calls, ${r.vad}, sum ${r.sumMs} ms: ${r.turns} turns, overhead p50 ${f(r.overhead.p50)} p99 ${f(r.overhead.p99)} ms, core CPU ${f(r.serverCpuPct)} %`,
      );
      if (r.errors.length) console.error(`  first errors: ${r.errors.slice(0, 3).join('; ')}`);
    }
    const pair = { delayed, floor };
    pairs.push(pair);
    return pair;
  };
  for (const n of calls) {
    if (vadChoice === 'energy') {
      await runPair(n, 'energy');
      continue;
    }
    const pair = await runPair(n, 'silero');
    if (vadChoice === 'both' || (vadChoice === 'auto' && (saturated(pair.delayed) || saturated(pair.floor))))
      await runPair(n, 'energy');
  }

  console.log(checkTable(pairs));
  console.log('\nWhere the time goes (fixed-delay runs):\n');
  console.log(stageTable(pairs));
  console.log(
    '\nConditions of each run (a run saturates at ≥ 90 % core CPU, core lag p99 > 20 ms, or > 1 % late reply frames):\n',
  );
  console.log(conditionsTable(pairs));
  const [l1] = loadavg();
  console.log(`\nLoad average at the end: ${l1?.toFixed(2)} (1 min).`);
  for (const p of pairs) {
    for (const r of [p.delayed, p.floor]) {
      if (r.errors.length)
        console.log(
          `\n${r.calls} calls, ${r.vad}, sum ${r.sumMs} ms: first errors: ${r.errors.slice(0, 3).join('; ')}`,
        );
    }
  }
}

if (import.meta.main) await main();
