/**
 * Voice-agent benchmark: real spoken conversations over real WebSockets, a core server in one
 * process and the callers (the load generator) in this one, side by side in one run.
 *
 *   npm run bench:agent                         # both measurements, full sizes (about 10 min)
 *   npm run bench:agent -- --quick              # small sizes, under a minute
 *   npm run bench:agent -- --only overhead --calls 1,100,500 --seconds 20
 *   npm run bench:agent -- --only capacity --offline-calls 10,20,40,60 --offline-seconds 30
 *   npm run bench:agent -- --encoding mulaw     # callers send G.711 mu-law instead of PCM16
 *
 * Callers speak the native `/realtime/voice` protocol, PCM16 at 16 kHz (the conversational
 * pipeline rate: nothing is resampled on the way in; `--encoding mulaw` keeps 16 kHz and sends
 * one byte a sample, to compare the two decode paths). Frames leave as a microphone's would,
 * each once its 20 ms are captured, so the clip's last frame is sent at the end of speech and
 * the server's endpointing silence is exactly the silent frames after it. Each conversation
 * waits for the greeting, then loops: a synthesised question (flite `slt`, made once per run)
 * frame by frame in real time, silence until the reply has played out, a pause, the next
 * question. The logic of a caller is `perf/scenarios/conversation.ts`.
 *
 * 1. Platform overhead: a `scripted` agent with zero-latency fake providers (`zero` STT returns
 *    a fixed transcript at once, `zero` TTS returns 100 ms of audio per text piece at once).
 *    Overhead per turn is `turnMs - endpointingMs` from the `turn.latency` event: `turnMs`
 *    runs from the end of speech (VAD turn end minus the silence it waited) to the first agent
 *    frame sent, so subtracting the endpointing silence leaves exactly the time from the VAD's
 *    end-of-turn decision to the first frame on the socket: STT finalize, brain, TTS, speech
 *    queue and playout, with the providers taking no time. The same call measured at the
 *    caller (end of speech → first frame heard, less the endpointing silence) adds both
 *    socket hops and the generator's own scheduling. The floor is the `echo` agent (end of
 *    speech → first echoed frame, no speech services at all), measured at the caller.
 *    Conversations run with the energy VAD, and with Silero (the default registry's choice);
 *    the VAD that ran is what the server reports. With Silero the caller-side figure also
 *    holds the detector's hangover (its speech flag falls some 100-200 ms after the words end,
 *    and only then does the endpointing silence start counting).
 *    Server times are `Date.now()` milliseconds, so the server-side figures are whole ms.
 * 2. Offline capacity: the demo agent (control/demo-agent.ts: pocketsphinx, flite `rms`,
 *    Silero) at rising concurrency: end of speech → first agent audio heard at the caller,
 *    provider time and VAD hangover included (the user-facing figure, which the verdict
 *    uses), the server's own `turnMs` with its STT and TTS parts, server CPU, RSS per
 *    conversation, and whether each reply is the asked intent's (`agent.said`).
 *
 * Everything goes to 127.0.0.1; every run is bounded in time; servers are killed on any exit.
 * `--serve <kind>` is the server side (started by this script, not by hand).
 */

import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type Socket, type Subprocess, spawn } from 'bun';
import { encodeMulaw } from '../../core/audio/g711.ts';
import { freePort } from '../../tests/support/services.ts';
import { synthesize } from '../../tests/support/voices.ts';
import {
  BENCH_AGENT_IDS,
  Caller,
  type CallerIntent,
  DEMO_INTENTS,
  demoAgentRecord,
  FRAME_SAMPLES,
  HOURS_INTENT,
  startMessage,
  stopMessage,
  subprotocols,
  summarise,
  type TurnSummary,
  ZERO_TRANSCRIPT,
  zeroAgentRecord,
} from '../scenarios/conversation.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SECRET = 'bench-secret-0123456789abcdef';
const API_KEY = 'bench-realtime-key-0123456789';
const CLK_TCK = 100;
/** Endpointing silence of the agents here (the record default `minMs`): the echo floor's. */
const ENDPOINTING_MS = 500;
/** Frames a late generator may send back to back per call; beyond that it skips (and says so). */
const MAX_CATCH_UP = 3;
/** Unsent bytes per socket before the generator stops queueing (the server is not reading). */
const MAX_BACKLOG_BYTES = 64 * 1024;

/** Which server a run starts: the agent it answers with and the registry behind it. */
export type ServerKind = 'echo' | 'zero-energy' | 'zero-silero' | 'offline';

const KIND_LABEL: Record<ServerKind, string> = {
  echo: 'echo agent (floor)',
  'zero-energy': 'scripted, zero providers, energy VAD',
  'zero-silero': 'scripted, zero providers, Silero VAD',
  offline: 'demo agent: pocketsphinx + flite + Silero',
};

// ------------------------------------------------------------------------------------------
// Server side

/**
 * The core as `core/main.ts` runs it (MemoryStore, no Redis), with the benchmark's agents
 * seeded and, for `zero-*`, the zero-latency providers registered; `zero-energy` and `echo`
 * drop the Silero entry so sessions get the energy VAD.
 */
async function serve(kind: ServerKind, port: number): Promise<void> {
  const { Core } = await import('../../core/app.ts');
  const { loadConfig } = await import('../../core/config/index.ts');
  const { createLogger } = await import('../../core/observability/index.ts');
  const { startHttpServer } = await import('../../core/server/index.ts');
  const { MemoryStore, keys } = await import('../../core/store/index.ts');
  const { defaultRegistry } = await import('../../core/agent/default-registry.ts');
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
  await store.set(keys.agent(BENCH_AGENT_IDS.zero), JSON.stringify(zeroAgentRecord()));
  await store.set(keys.agent(BENCH_AGENT_IDS.demo), JSON.stringify(demoAgentRecord()));
  const registry = defaultRegistry();
  if (kind === 'zero-energy' || kind === 'zero-silero') {
    registry.speechToText('zero', () => new ZeroStt()).textToSpeech('zero', () => new ZeroTts());
  }
  if (kind === 'zero-energy' || kind === 'echo') registry.vad.delete('silero');
  const core = new Core({ config, store, log, registry });
  startHttpServer({ port, hostname: '127.0.0.1', plane: core, log });
  // Tell the runner which detector conversations get here (echo always runs the energy one).
  const probe = registry.createVad(16000, 500, process.env);
  const vad = kind === 'echo' || !(probe instanceof ModelVad) ? 'energy' : 'silero';
  probe.close?.();
  console.log(`bench-vad=${vad}`);
  // Never outlive the benchmark, even if it was killed without a chance to clean up.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0));
}

/** A recogniser that hears nothing and returns the fixed transcript at once. */
class ZeroStt {
  readonly name = 'zero';
  readonly sampleRates = [16000] as const;
  async open() {
    return {
      push() {},
      finalize: async () => ({ text: ZERO_TRANSCRIPT, final: true }),
      close() {},
    };
  }
}

/** A voice that returns 100 ms of a quiet tone per text piece, at once. */
class ZeroTts {
  readonly name = 'zero';
  readonly sampleRate = 16000;
  private readonly pcm = (() => {
    const out = new Int16Array(1600);
    for (let i = 0; i < out.length; i++)
      out[i] = Math.round(3000 * Math.sin((2 * Math.PI * 440 * i) / 16000));
    return out;
  })();

  async *synthesize(text: AsyncIterable<string> | string, signal: AbortSignal) {
    const pieces = typeof text === 'string' ? [text] : text;
    for await (const piece of pieces) {
      if (signal.aborted) return;
      yield { pcm: this.pcm, sampleRate: this.sampleRate, text: piece };
    }
  }
}

// ------------------------------------------------------------------------------------------
// Load generator: a minimal WebSocket client (prebuilt masked frames, binary frames counted)

interface SocketState {
  upgraded: boolean;
  buffer: Uint8Array;
  used: number;
  backlog: Uint8Array[];
  backlogBytes: number;
  closed: boolean;
  onText(text: string): void;
  onBinary(): void;
  opened: { resolve(): void; reject(err: Error): void } | null;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A masked client frame (mask key 0: the payload is unchanged) of `opcode` around `payload`. */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const header = n < 126 ? 6 : n < 65536 ? 8 : 14;
  const frame = new Uint8Array(header + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65536) {
    frame[1] = 0x80 | 126;
    frame[2] = n >> 8;
    frame[3] = n & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  frame.set(payload, header);
  return frame;
}

/**
 * One caller's socket over Bun.connect: the browser-style WebSocket costs an event object per
 * message, which at hundreds of calls times 50 frames a second would load the shared CPU.
 */
class CallerSocket {
  private constructor(private readonly socket: Socket<SocketState>) {}

  static async connect(
    port: number,
    path: string,
    protocols: string[],
    on: Pick<SocketState, 'onText' | 'onBinary'>,
  ) {
    let opened!: SocketState['opened'];
    const ready = new Promise<void>((resolve, reject) => {
      opened = { resolve, reject };
    });
    const state: SocketState = {
      upgraded: false,
      buffer: new Uint8Array(64 * 1024),
      used: 0,
      backlog: [],
      backlogBytes: 0,
      closed: false,
      opened,
      ...on,
    };
    const socket = await Bun.connect<SocketState>({
      hostname: '127.0.0.1',
      port,
      data: state,
      socket: {
        open(s) {
          s.write(
            `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
              `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n\r\n`,
          );
        },
        data(s, chunk) {
          CallerSocket.onData(s, chunk);
        },
        close(s) {
          s.data.closed = true;
          s.data.opened?.reject(new Error('closed during handshake'));
        },
        error(s, err) {
          s.data.opened?.reject(err);
        },
        drain(s) {
          CallerSocket.writeBacklog(s);
        },
      },
    });
    await ready;
    return new CallerSocket(socket);
  }

  private static onData(s: Socket<SocketState>, chunk: Uint8Array): void {
    const st = s.data;
    if (st.used + chunk.length > st.buffer.length) {
      const next = new Uint8Array(Math.max(st.buffer.length * 2, st.used + chunk.length));
      next.set(st.buffer.subarray(0, st.used));
      st.buffer = next;
    }
    st.buffer.set(chunk, st.used);
    st.used += chunk.length;
    const buf = st.buffer;
    let pos = 0;
    if (!st.upgraded) {
      const text = decoder.decode(buf.subarray(0, st.used));
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!text.startsWith('HTTP/1.1 101')) {
        st.opened?.reject(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
        st.opened = null;
        return;
      }
      st.upgraded = true;
      st.opened?.resolve();
      st.opened = null;
      pos = end + 4;
    }
    while (st.used - pos >= 2) {
      const opcode = buf[pos]! & 0x0f;
      let len = buf[pos + 1]! & 0x7f;
      let header = 2;
      if (len === 126) {
        if (st.used - pos < 4) break;
        len = (buf[pos + 2]! << 8) | buf[pos + 3]!;
        header = 4;
      } else if (len === 127) {
        if (st.used - pos < 10) break;
        len = Number(new DataView(buf.buffer, buf.byteOffset + pos + 2, 8).getBigUint64(0));
        header = 10;
      }
      if (st.used - pos < header + len) break;
      const payload = buf.subarray(pos + header, pos + header + len);
      if (opcode === 2) st.onBinary();
      else if (opcode === 1) st.onText(decoder.decode(payload));
      else if (opcode === 9) CallerSocket.write(s, clientFrame(10, payload.slice()));
      else if (opcode === 8) s.end();
      pos += header + len;
    }
    if (pos > 0) {
      buf.copyWithin(0, pos, st.used);
      st.used -= pos;
    }
  }

  private static writeBacklog(s: Socket<SocketState>): void {
    const st = s.data;
    while (st.backlog.length > 0) {
      const chunk = st.backlog[0]!;
      const n = s.write(chunk);
      st.backlogBytes -= n;
      if (n < chunk.length) {
        st.backlog[0] = chunk.subarray(n);
        return;
      }
      st.backlog.shift();
    }
  }

  private static write(s: Socket<SocketState>, frame: Uint8Array): void {
    const st = s.data;
    if (st.backlog.length > 0) {
      st.backlog.push(frame.slice());
      st.backlogBytes += frame.length;
      return;
    }
    const n = s.write(frame);
    if (n < frame.length) {
      st.backlog.push(frame.slice(n));
      st.backlogBytes += frame.length - n;
    }
  }

  /** Writes a prebuilt frame now (the socket copies it), behind any backlog. */
  send(frame: Uint8Array): void {
    CallerSocket.write(this.socket, frame);
  }

  sendText(text: string): void {
    this.send(clientFrame(1, encoder.encode(text)));
  }

  get backlogBytes(): number {
    return this.socket.data.backlogBytes;
  }

  get isClosed(): boolean {
    return this.socket.data.closed;
  }

  close(): void {
    this.socket.end();
  }
}

// ------------------------------------------------------------------------------------------
// Caller audio

/** How callers encode their audio on the native protocol (16 kHz either way). */
export type CallerEncoding = 'pcm16' | 'mulaw';

/** A caller's question as ready-to-send binary frames, one per 20 ms, with the silence frame. */
export interface Clip {
  intent: CallerIntent;
  encoding: CallerEncoding;
  frames: Uint8Array[];
  silence: Uint8Array;
}

function wireBytes(pcm: Int16Array, encoding: CallerEncoding): Uint8Array {
  if (encoding === 'pcm16') return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Uint8Array(pcm.length);
  encodeMulaw(pcm, out);
  return out;
}

/**
 * Speaks each intent's question with flite `slt` at 16 kHz (once: a few hundred ms each), trims
 * the engine's leading and trailing silence (the turn ends where the words end), and cuts it
 * into masked binary frames of `encoding`.
 */
export function makeClips(intents: CallerIntent[], encoding: CallerEncoding = 'pcm16'): Clip[] {
  const silence = clientFrame(2, wireBytes(new Int16Array(FRAME_SAMPLES), encoding));
  return intents.map((intent) => {
    const pcm = synthesize(intent.ask, { engine: 'flite', voice: 'slt', sampleRate: 16000 });
    let first = 0;
    let last = pcm.length - 1;
    while (first < last && Math.abs(pcm[first]!) < 300) first++;
    while (last > first && Math.abs(pcm[last]!) < 300) last--;
    const words = pcm.subarray(first, last + 1);
    const frames: Uint8Array[] = [];
    for (let at = 0; at < words.length; at += FRAME_SAMPLES) {
      const frame = new Int16Array(FRAME_SAMPLES);
      frame.set(words.subarray(at, Math.min(words.length, at + FRAME_SAMPLES)));
      frames.push(clientFrame(2, wireBytes(frame, encoding)));
    }
    return { intent, encoding, frames, silence };
  });
}

// ------------------------------------------------------------------------------------------
// One run: a server, N conversations, a measured window

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime + stime, plus the reaped children's (flite runs as one process per sentence).
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m?.[1] ?? 0) * 1024;
}

async function scrapeLagP99Ms(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_p99_seconds '));
  return line ? Number(line.split(' ')[1]) * 1000 : Number.NaN;
}

/** Resolves once `cond` holds, polling every `everyMs`, or once `capMs` has passed. */
async function until(cond: () => boolean, capMs: number, everyMs = 50): Promise<boolean> {
  const deadline = performance.now() + capMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(everyMs);
  }
  return true;
}

/**
 * The VAD the server reported at start (its `bench-vad=` line). The rest of its stdout (warn
 * logs) is read and dropped, so a full pipe never blocks the server.
 */
async function serverVad(proc: Subprocess<'ignore', 'pipe', 'inherit'>): Promise<string> {
  const reader = proc.stdout.getReader();
  let text = '';
  let found: RegExpExecArray | null = null;
  while (!found) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
    found = /bench-vad=(\w+)/.exec(text);
  }
  void (async () => {
    while (!(await reader.read()).done) {
      // Dropped.
    }
  })().catch(() => {});
  return found?.[1] ?? 'unknown';
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

/** Servers this process started: killed on any exit, so a failed run leaves none behind. */
const children = new Set<Subprocess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface RunOptions {
  kind: ServerKind;
  calls: number;
  clips: Clip[];
  /** Measured window after the warm-up; ignored when `maxTurns` bounds the run instead. */
  windowMs: number;
  warmupMs: number;
  /** Each conversation stops after this many turns, and the whole run is summarised. */
  maxTurns?: number;
  /** A reply not finished this long after the end of speech counts as missed. */
  turnTimeoutMs: number;
}

export interface RunResult {
  kind: ServerKind;
  label: string;
  /** The VAD conversations ran with, as the server reported it. */
  vad: string;
  calls: number;
  /** Sessions that opened and got their first turn going. */
  connected: number;
  summary: TurnSummary;
  serverCpuPct: number;
  generatorCpuPct: number;
  lagP99Ms: number;
  rssPerCallKb: number;
  serverRssMb: number;
  errors: string[];
  /** Frames the generator could not send on time (late beyond catch-up, or socket full). */
  generatorMisses: number;
  generatorLagP99Ms: number;
  windowS: number;
}

/** Starts a server of `kind`, runs `calls` conversations over a window, and measures them. */
export async function runConversations(o: RunOptions): Promise<RunResult> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // BENCH_SERVER_FLAGS passes Bun flags to the server, e.g. "--cpu-prof-md --cpu-prof-dir=/tmp/prof".
  const flags = process.env.BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? [];
  const argv = [process.execPath, ...flags, 'run', 'perf/local/agent-bench.ts', '--serve', o.kind];
  const proc = spawn([...argv, '--port', String(port)], {
    cwd: ROOT,
    env: process.env,
    stdout: 'pipe',
    stderr: 'inherit',
  });
  children.add(proc);
  try {
    if (!(await healthy(base, 20_000))) throw new Error(`${o.kind} server did not start`);
    const vad = await serverVad(proc);
    await Bun.sleep(300);
    const idleRss = rssBytes(proc.pid);

    const agentId =
      o.kind === 'echo'
        ? BENCH_AGENT_IDS.echo
        : o.kind === 'offline'
          ? BENCH_AGENT_IDS.demo
          : BENCH_AGENT_IDS.zero;
    const clipFrames = o.clips.map((c) => c.frames.length);
    const intents = o.clips.map((c) => c.intent);
    interface Conversation {
      caller: Caller;
      ws: CallerSocket;
    }
    const conversations: Conversation[] = [];
    const runId = Date.now().toString(36);
    const connectErrors: string[] = [];
    for (let i = 0; i < o.calls; i += 50) {
      const batch = Array.from({ length: Math.min(50, o.calls - i) }, async (_, k) => {
        const n = i + k;
        const caller = new Caller({
          clipFrames,
          intents,
          firstIntent: n,
          expectsGreeting: o.kind !== 'echo',
          replyEnd: o.kind === 'echo' ? 'mark' : 'said',
          // 0 to 2 s of silence before the first turn, spread evenly: calls do not speak in step.
          leadFrames: o.calls === 1 ? 0 : Math.floor((n * 100) / o.calls),
          turnTimeoutMs: o.turnTimeoutMs,
          greetingTimeoutMs: 120_000,
          maxTurns: o.maxTurns,
        });
        try {
          const ws = await CallerSocket.connect(port, '/realtime/voice', subprotocols(API_KEY), {
            onText: (text) => caller.onText(text, performance.now()),
            onBinary: () => caller.onAudio(performance.now()),
          });
          ws.sendText(startMessage(`bench-${runId}-${n}`, agentId, o.clips[0]!.encoding));
          conversations.push({ caller, ws });
        } catch (err) {
          connectErrors.push(`call ${n}: ${(err as Error).message}`);
        }
      });
      await Promise.all(batch);
    }

    // The generator's own event-loop lag: late frames from here would look like server delay.
    const genLag = monitorEventLoopDelay({ resolution: 5 });
    genLag.enable();
    // Every call sends one frame per 20 ms, in four groups 5 ms apart, on a drift-free grid.
    const groups = 4;
    const slotMs = 20 / groups;
    const seq = conversations.map(() => 0);
    const silence = o.clips[0]!.silence;
    let misses = 0;
    let running = true;
    const t0 = performance.now();
    const sendGroup = (g: number, frameIndex: number) => {
      const now = performance.now();
      for (let i = g; i < conversations.length; i += groups) {
        const c = conversations[i]!;
        if (c.ws.isClosed || c.caller.ended) continue;
        if (frameIndex - seq[i]! >= MAX_CATCH_UP) {
          misses += frameIndex - seq[i]! - MAX_CATCH_UP + 1;
          seq[i] = frameIndex - MAX_CATCH_UP + 1;
        }
        while (seq[i]! <= frameIndex) {
          seq[i]!++;
          const choice = c.caller.next(now);
          if (c.ws.backlogBytes > MAX_BACKLOG_BYTES) {
            misses++;
            continue;
          }
          c.ws.send(choice.kind === 'speech' ? o.clips[choice.clip]!.frames[choice.frame]! : silence);
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

    // Warm-up: every call past its greeting, then a little more; then the window.
    const callers = conversations.map((c) => c.caller);
    await until(() => callers.every((c) => c.talking), 120_000);
    let windowStart: number;
    let windowEnd: number;
    let cpu0: number;
    let cpu1: number;
    let gen: NodeJS.CpuUsage;
    let loadedRss: number;
    let lagP99Ms: number;
    if (o.maxTurns) {
      windowStart = Number.NEGATIVE_INFINITY;
      const start = performance.now();
      cpu0 = cpuSeconds(proc.pid);
      const gen0 = process.cpuUsage();
      await scrapeLagP99Ms(base);
      genLag.reset();
      await until(() => callers.every((c) => c.done), o.maxTurns * (o.turnTimeoutMs + 15_000));
      windowEnd = Number.POSITIVE_INFINITY;
      cpu1 = cpuSeconds(proc.pid);
      gen = process.cpuUsage(gen0);
      loadedRss = rssBytes(proc.pid);
      lagP99Ms = await scrapeLagP99Ms(base);
      o.windowMs = performance.now() - start;
    } else {
      await Bun.sleep(o.warmupMs);
      await scrapeLagP99Ms(base); // resets the server's lag histogram: the window starts now
      genLag.reset();
      windowStart = performance.now();
      cpu0 = cpuSeconds(proc.pid);
      const gen0 = process.cpuUsage();
      await Bun.sleep(o.windowMs);
      windowEnd = performance.now();
      cpu1 = cpuSeconds(proc.pid);
      gen = process.cpuUsage(gen0);
      loadedRss = rssBytes(proc.pid);
      lagP99Ms = await scrapeLagP99Ms(base);
      for (const c of callers) c.stop();
      // Turns that ended in the window get to finish (bounded by their timeout).
      await until(() => callers.every((c) => c.done), o.turnTimeoutMs + 2000);
    }
    const generatorLagP99Ms = genLag.percentile(99) / 1e6;
    genLag.disable();
    const wallS = o.maxTurns ? o.windowMs / 1000 : (windowEnd - windowStart) / 1000;
    running = false;
    await sendLoop;
    for (const c of conversations) {
      if (c.ws.isClosed) continue;
      c.ws.sendText(stopMessage());
      c.ws.close();
    }
    const turns = callers.flatMap((c) => c.turns);
    const summary = summarise(turns, windowStart, windowEnd, ENDPOINTING_MS);
    const errors = [...connectErrors, ...callers.flatMap((c) => c.errors)];
    return {
      kind: o.kind,
      label: KIND_LABEL[o.kind],
      vad,
      calls: o.calls,
      connected: callers.filter((c) => c.turns.length > 0).length,
      summary,
      serverCpuPct: ((cpu1 - cpu0) / wallS) * 100,
      generatorCpuPct: ((gen.user + gen.system) / 1e6 / wallS) * 100,
      lagP99Ms,
      rssPerCallKb: (loadedRss - idleRss) / o.calls / 1024,
      serverRssMb: loadedRss / 1024 / 1024,
      errors,
      generatorMisses: misses,
      generatorLagP99Ms,
      windowS: wallS,
    };
  } finally {
    proc.kill('SIGTERM');
    await Promise.race([proc.exited, Bun.sleep(3000)]);
    proc.kill('SIGKILL');
    children.delete(proc);
  }
}

// ------------------------------------------------------------------------------------------
// Report

const f = (n: number, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : 'n/a';
const pair = (a: number, b: number, d = 1) => `${f(a, d)} / ${f(b, d)}`;

function machine(command: string): string {
  const cpu = cpus();
  const [l1, l5, l15] = loadavg();
  return [
    `Machine: ${cpu[0]?.model ?? 'cpu'}, ${cpu.length} cores, ${f(totalmem() / 1024 ** 3, 1)} GiB RAM; Bun ${Bun.version}`,
    `Command: \`${command}\``,
    `Load average at start of this measurement: ${l1?.toFixed(2)} / ${l5?.toFixed(2)} / ${l15?.toFixed(2)} (1 / 5 / 15 min); server and callers share the machine`,
  ].join('\n');
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function errorCell(r: RunResult): string {
  const missed = r.summary.turns - r.summary.completed;
  return `${f(r.errors.length)} / ${f(missed)}`;
}

/** The overhead measurement's table for one concurrency, targets side by side. */
export function overheadTable(results: RunResult[]): string {
  const rows: [string, (r: RunResult) => string][] = [
    ['conversations (with a turn)', (r) => `${f(r.calls)} (${f(r.connected)})`],
    ['VAD that ran', (r) => r.vad],
    [
      'turns in window / replies finished / right',
      (r) => {
        const s = r.summary;
        return `${f(s.turns)} / ${f(s.completed)} / ${r.kind === 'echo' ? 'n/a' : f(s.rightReplies)}`;
      },
    ],
    [
      '**platform overhead** `turnMs − endpointingMs` p50 / p99 (server)',
      (r) =>
        r.kind === 'echo'
          ? 'n/a (no turn.latency)'
          : `**${pair(r.summary.overhead.p50, r.summary.overhead.p99, 2)} ms**`,
    ],
    ['same, max (server)', (r) => (r.kind === 'echo' ? 'n/a' : `${f(r.summary.overhead.max, 1)} ms`)],
    [
      'end of speech → first audio heard, less endpointing, p50 / p99 (caller)',
      (r) => `${pair(r.summary.endToEndLessEndpointing.p50, r.summary.endToEndLessEndpointing.p99)} ms`,
    ],
    [
      'end of speech → first audio heard p50 / p99 (caller, endpointing included)',
      (r) => `${pair(r.summary.endToEnd.p50, r.summary.endToEnd.p99)} ms`,
    ],
    ['server CPU', (r) => `${f(r.serverCpuPct)} %`],
    ['load generator CPU', (r) => `${f(r.generatorCpuPct)} %`],
    [
      'event-loop lag p99: server / generator',
      (r) => `${f(r.lagP99Ms, 1)} / ${f(r.generatorLagP99Ms, 1)} ms`,
    ],
    ['server RSS / per conversation', (r) => `${f(r.serverRssMb)} MB / ${f(r.rssPerCallKb)} KB`],
    ['errors / turns timed out', errorCell],
    ['generator frames late or dropped', (r) => f(r.generatorMisses)],
  ];
  return table(
    ['metric', ...results.map((r) => r.label)],
    rows.map(([label, cell]) => [label, ...results.map(cell)]),
  );
}

/** The capacity measurement's table, one row per concurrency. */
export function capacityTable(results: RunResult[], targetP99Ms: number): string {
  return table(
    [
      'concurrent (past the greeting)',
      'turns',
      'replies right',
      'end of speech → first agent audio heard p50 / p99 (caller)',
      'same, server `turnMs` (end of speech as the VAD saw it → first frame sent)',
      'STT finalize p50 / p99',
      'TTS first audio p50 / p99',
      'turns with a filler line first',
      'server CPU (with its flite processes)',
      'RSS / conversation',
      'errors / timed out',
      `heard p99 < ${targetP99Ms} ms, replies right ≥ 95 %, no errors`,
    ],
    results.map((r) => {
      const s = r.summary;
      const ok =
        s.endToEnd.p99 < targetP99Ms &&
        s.turns > 0 &&
        s.rightReplies / s.turns >= 0.95 &&
        r.errors.length === 0;
      return [
        `${f(r.calls)} (${f(r.connected)})`,
        f(s.turns),
        `${f(s.rightReplies)} (${f((100 * s.rightReplies) / Math.max(1, s.turns))} %)`,
        `${pair(s.endToEnd.p50, s.endToEnd.p99, 0)} ms`,
        `${pair(s.turnMs.p50, s.turnMs.p99, 0)} ms`,
        `${pair(s.sttMs.p50, s.sttMs.p99, 0)} ms`,
        `${pair(s.ttsFirstAudioMs.p50, s.ttsFirstAudioMs.p99, 0)} ms`,
        f(s.withFiller),
        `${f(r.serverCpuPct)} %`,
        `${f(r.rssPerCallKb / 1024, 1)} MB`,
        errorCell(r),
        ok ? 'yes' : '**no**',
      ];
    }),
  );
}

// ------------------------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      serve: { type: 'string' },
      port: { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      calls: { type: 'string' },
      seconds: { type: 'string' },
      'offline-calls': { type: 'string' },
      'offline-seconds': { type: 'string' },
      encoding: { type: 'string', default: 'pcm16' },
    },
  });
  if (args.serve) {
    await serve(args.serve as ServerKind, Number(args.port));
    return;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const quick = args.quick;
  const list = (v: string | undefined, def: string) =>
    (v ?? def)
      .split(',')
      .map(Number)
      .filter((n) => n > 0);
  const overheadCalls = list(args.calls, quick ? '10' : '1,100,500');
  const overheadWindowMs = Number(args.seconds ?? (quick ? 3 : 20)) * 1000;
  const overheadWarmupMs = quick ? 1000 : 3000;
  const offlineCalls = list(args['offline-calls'], quick ? '2' : '10,20,40,60');
  const offlineWindowMs = Number(args['offline-seconds'] ?? (quick ? 6 : 30)) * 1000;
  const offlineWarmupMs = quick ? 1000 : 5000;
  const encoding = args.encoding === 'mulaw' ? 'mulaw' : 'pcm16';
  const command = `bun perf/local/agent-bench.ts ${process.argv.slice(2).join(' ')}`.trim();

  if (!args.only || args.only === 'overhead') {
    console.log('\n## 1. Platform overhead per turn (zero-latency providers)\n');
    console.log(machine(command));
    console.log(
      `Native /realtime/voice, ${encoding === 'pcm16' ? 'PCM16' : 'mu-law'} 16 kHz; each conversation asks "${HOURS_INTENT.ask}" (flite slt, trimmed), ` +
        `then silence until the reply has played; ${overheadWindowMs / 1000} s window after every call is past ` +
        `its greeting and ${overheadWarmupMs / 1000} s of warm-up. \`zero\` STT answers at once, \`zero\` TTS returns 100 ms of audio per piece at once.\n`,
    );
    const clips = makeClips([HOURS_INTENT], encoding);
    const kinds: ServerKind[] = ['echo', 'zero-energy', 'zero-silero'];
    for (const calls of overheadCalls) {
      const results: RunResult[] = [];
      for (const kind of kinds) {
        results.push(
          await runConversations({
            kind,
            calls,
            clips,
            windowMs: overheadWindowMs,
            warmupMs: overheadWarmupMs,
            turnTimeoutMs: 10_000,
          }),
        );
      }
      console.log(`### ${calls} concurrent conversation${calls === 1 ? '' : 's'}\n`);
      console.log(overheadTable(results));
      for (const r of results)
        if (r.errors.length) console.log(`\n${r.label}: first errors: ${r.errors.slice(0, 3).join('; ')}`);
      console.log('');
    }
  }

  if (!args.only || args.only === 'capacity') {
    console.log('\n## 2. Offline capacity (pocketsphinx + flite + Silero, the demo agent)\n');
    console.log(machine(command));
    console.log(
      `Native /realtime/voice, ${encoding === 'pcm16' ? 'PCM16' : 'mu-law'} 16 kHz; callers ask the demo agent's intents in turn ` +
        `(${DEMO_INTENTS.map((i) => `"${i.ask}"`).join(', ')}; flite slt, trimmed), each reply checked against ` +
        `the asked intent's; ${offlineWindowMs / 1000} s window after every call is past its greeting and ${offlineWarmupMs / 1000} s of warm-up. ` +
        'Latencies include provider time.\n',
    );
    const clips = makeClips(DEMO_INTENTS, encoding);
    const results: RunResult[] = [];
    for (const calls of offlineCalls) {
      const r = await runConversations({
        kind: 'offline',
        calls,
        clips,
        windowMs: offlineWindowMs,
        warmupMs: offlineWarmupMs,
        turnTimeoutMs: 20_000,
      });
      results.push(r);
      console.error(
        `offline ${calls}: turns ${r.summary.turns}, turnMs p99 ${f(r.summary.turnMs.p99)} ms, CPU ${f(r.serverCpuPct)} %`,
      );
      if (r.errors.length) console.error(`  first errors: ${r.errors.slice(0, 3).join('; ')}`);
    }
    console.log(capacityTable(results, 800));
    const [l1] = loadavg();
    console.log(`\nLoad average at the end: ${l1?.toFixed(2)} (1 min).`);
  }
}

if (import.meta.main) await main();
