/**
 * Voice throughput benchmark: N concurrent Twilio-protocol calls, each streaming one 160-byte
 * mu-law frame per 20 ms, against (1) a bare Bun.serve echo server (the floor) and (2) sipai's
 * core running the `loopback` agent (every frame decoded, VAD'd, queued and paced back out
 * through the real session pipeline) — same load, same run, side by side.
 *
 *   npm run bench:voice                          # 2,000 calls, 20 s window
 *   npm run bench:voice -- --calls 500 --seconds 10
 *
 * Measures: frames lost, server CPU per inbound frame, p50/p99 event-loop lag in the window,
 * RSS per call, and whether the VOICE_THRESHOLDS the k6 script uses hold.
 */

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { type Subprocess, spawn } from 'bun';
import { computeTwilioSignature } from '../../core/telephony/signatures/twilio.ts';
import { freePort } from '../../tests/support/services.ts';
import {
  type CallStats,
  connectedMessage,
  mediaMessage,
  mediaNumberOffsets,
  NUMBER_WIDTH,
  newCallStats,
  type StreamIds,
  startMessage,
  stopMessage,
  streamIds,
  TONE_FRAME_B64,
  VOICE_THRESHOLDS,
} from '../scenarios/twilio-stream.ts';
import { RawWs } from './raw-ws.ts';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    only: { type: 'string' },
  },
});
const CALLS = Number(args.calls);
const WINDOW_S = Number(args.seconds);
const WARMUP_S = Number(args.warmup);
const SECRET = 'bench-secret-0123456789abcdef';
const TWILIO_TOKEN = 'bench-twilio-auth-token';
/** Frames a late generator may send back to back per call; beyond that it skips (and says so). */
const MAX_CATCH_UP = 3;
/** Unsent bytes per socket before the generator stops queueing (the server is not reading). */
const MAX_BACKLOG_BYTES = 64 * 1024;
const ROOT = new URL('../../', import.meta.url).pathname;
const CLK_TCK = 100;

interface Target {
  name: string;
  start(port: number): Subprocess;
  /** Admits a call the way a provider does and returns its stream token (none for the floor). */
  admit(base: string, callSid: string): Promise<string>;
  /** Event-loop lag quantiles since the previous call, ms. */
  lag(base: string): Promise<{ p50: number; p99: number }>;
  /** Frames the server counted in and out, when it counts them. */
  serverFrames(base: string): Promise<{ in: number; out: number } | null>;
}

async function scrape(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const targets: Target[] = [
  {
    name: 'bare Bun.serve echo (floor)',
    start: (port) =>
      spawn([process.execPath, 'run', 'perf/local/echo-floor.ts'], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port) },
        stdout: 'ignore',
        stderr: 'inherit',
      }),
    async lag(base) {
      const s = (await (await fetch(`${base}/stats`)).json()) as { lagP50Ms: number; lagP99Ms: number };
      return { p50: s.lagP50Ms, p99: s.lagP99Ms };
    },
    serverFrames: async () => null,
    admit: async () => '',
  },
  {
    name: 'sipai core (loopback agent)',
    start: (port) =>
      // BENCH_SERVER_FLAGS passes Bun flags to the core, e.g. "--cpu-prof-md --cpu-prof-dir=/tmp/prof".
      spawn(
        [
          process.execPath,
          ...(process.env.BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? []),
          'run',
          'core/main.ts',
        ],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            PORT: String(port),
            HOST: '127.0.0.1',
            REALTIME_WS_SECRET: SECRET,
            TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
            PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
            TELEPHONY_GLOBAL_MAX_CONCURRENCY: String(CALLS * 2),
            LOG_LEVEL: 'warn',
            SESSION_IDLE_TIMEOUT_SEC: '120',
            // Every caller comes from 127.0.0.1: let a whole batch be mid-setup at once.
            WS_MAX_PENDING_PER_ADDRESS: '100000',
          },
          stdout: 'ignore',
          stderr: 'inherit',
        },
      ),
    async lag(base) {
      const m = await scrape(base);
      return {
        p50: (m.get('nodejs_eventloop_lag_p50_seconds') ?? Number.NaN) * 1000,
        p99: (m.get('nodejs_eventloop_lag_p99_seconds') ?? Number.NaN) * 1000,
      };
    },
    async admit(base, callSid) {
      // The provider's voice webhook, signed like Twilio signs it; the TwiML carries the token.
      const path = '/telephony/twilio/voice?agentId=loopback';
      const params = { CallSid: callSid, From: '+14155550100', To: '+15005550006', CallStatus: 'ringing' };
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': computeTwilioSignature(`${base}${path}`, params, TWILIO_TOKEN),
        },
        body: new URLSearchParams(params).toString(),
      });
      const token = /name="token" value="([^"]+)"/.exec(await res.text())?.[1];
      if (!token) throw new Error(`call ${callSid} was not admitted (HTTP ${res.status})`);
      return token;
    },
    async serverFrames(base) {
      const m = await scrape(base);
      return {
        in: m.get('sipai_ws_frames_in_total{protocol="twilio"}') ?? 0,
        out: m.get('sipai_ws_frames_out_total{protocol="twilio"}') ?? 0,
      };
    },
  },
];

/** utime + stime of a process in seconds, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m?.[1] ?? 0) * 1024;
}

async function waitReady(base: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      await fetch(`${base}/stats`);
      return;
    } catch {
      await Bun.sleep(100);
    }
  }
  throw new Error(`server at ${base} did not start`);
}

const MEDIA_PREFIX = new TextEncoder().encode('{"event":"media"');
function isMedia(head: Uint8Array): boolean {
  if (head.length < MEDIA_PREFIX.length) return false;
  for (let i = 0; i < MEDIA_PREFIX.length; i++) if (head[i] !== MEDIA_PREFIX[i]) return false;
  return true;
}

/** Writes `value` as zero-padded decimal digits into `buf` at `at` (NUMBER_WIDTH wide). */
function patchDigits(buf: Uint8Array, at: number, value: number): void {
  let v = value;
  for (let i = at + NUMBER_WIDTH - 1; i >= at; i--) {
    buf[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
}

/** One call's media frame, built once from the scenario's message and patched per send. */
function mediaFrame(ids: StreamIds) {
  const text = mediaMessage(ids, 0, TONE_FRAME_B64);
  const { frame, payloadOffset } = RawWs.textFrame(text);
  const o = mediaNumberOffsets(text);
  return {
    frame,
    set(seq: number) {
      patchDigits(frame, payloadOffset + o.sequence, seq + 2);
      patchDigits(frame, payloadOffset + o.chunk, seq + 1);
      patchDigits(frame, payloadOffset + o.timestamp, seq * 20);
    },
  };
}

interface Call {
  ids: StreamIds;
  media: ReturnType<typeof mediaFrame>;
  ws: RawWs;
  stats: CallStats;
  seq: number;
  startedAt: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Servers this run started: killed on any exit, so a failed or interrupted run leaves none behind. */
const children = new Set<Subprocess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

async function run(target: Target) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = target.start(port);
  children.add(proc);
  await waitReady(base);
  await Bun.sleep(1000);
  const idleRss = rssBytes(proc.pid);

  // Open every call (in batches, as a ramp), then start streaming.
  const runId = Date.now().toString(16);
  const calls: Call[] = [];
  for (let i = 0; i < CALLS; i += 200) {
    const batch = Array.from({ length: Math.min(200, CALLS - i) }, (_, k) => {
      const ids = streamIds(runId, i + k);
      const call: Call = {
        ids,
        media: mediaFrame(ids),
        ws: null as unknown as RawWs,
        stats: newCallStats(),
        seq: 0,
        startedAt: 0,
      };
      return target.admit(base, ids.callSid).then((token) =>
        RawWs.connect('127.0.0.1', port, '/telephony/twilio/stream', {
          onText(head) {
            if (!isMedia(head)) return;
            call.stats.received++;
            if (call.stats.firstAudioMs === null)
              call.stats.firstAudioMs = performance.now() - call.startedAt;
          },
        }).then((ws) => {
          call.ws = ws;
          ws.sendText(connectedMessage());
          ws.sendText(startMessage(ids, token, 'loopback'));
          ws.flush();
          return call;
        }),
      );
    });
    calls.push(...(await Promise.all(batch)));
  }
  await Bun.sleep(500);

  // Four groups, one every 5 ms, each sending its calls' next frame on a drift-free 20 ms grid.
  const groups = 4;
  const t0 = performance.now();
  for (const c of calls) c.startedAt = t0;
  let running = true;
  const misses = { skippedLate: 0, droppedFull: 0, closedCalls: 0 };
  const slotMs = 20 / groups;
  /** Sends group `g`'s frames up to `frameIndex`: a bounded catch-up, the rest skipped and counted. */
  const sendGroup = (g: number, frameIndex: number) => {
    for (let i = g; i < calls.length; i += groups) {
      const c = calls[i]!;
      if (c.ws.isClosed) continue;
      // Real-time audio this late would be useless to a call: skip it, and say so.
      if (frameIndex - c.seq >= MAX_CATCH_UP) {
        misses.skippedLate += frameIndex - c.seq - MAX_CATCH_UP + 1;
        c.seq = frameIndex - MAX_CATCH_UP + 1;
      }
      while (c.seq <= frameIndex) {
        c.seq++;
        if (c.ws.backlogBytes > MAX_BACKLOG_BYTES) {
          misses.droppedFull++;
          continue;
        }
        c.media.set(c.seq - 1);
        c.ws.sendFrame(c.media.frame);
        c.stats.sent++;
      }
    }
  };
  const sendLoop = (async () => {
    let done = -1; // last slot handled; slots follow elapsed time, not loop turns
    while (running) {
      const slot = Math.floor((performance.now() - t0) / slotMs);
      // A late loop handles every group once, each up to its current frame (catch-up bounded).
      for (let s = Math.max(done + 1, slot - groups + 1); s <= slot; s++)
        sendGroup(s % groups, Math.floor(s / groups));
      done = slot;
      // Always yield, even when late: a loop that never awaits would stop reading its sockets.
      const wait = t0 + (slot + 1) * slotMs - performance.now();
      await Bun.sleep(Math.max(wait, 0));
    }
  })();

  const totals = () =>
    calls.reduce((a, c) => ({ sent: a.sent + c.stats.sent, received: a.received + c.stats.received }), {
      sent: 0,
      received: 0,
    });
  await Bun.sleep(WARMUP_S * 1000);
  await target.lag(base); // resets the server's lag histogram: the window starts now
  const cpu0 = cpuSeconds(proc.pid);
  const gen0 = process.cpuUsage();
  const w0 = totals();
  const wallStart = performance.now();
  await Bun.sleep(WINDOW_S * 1000);
  const wallS = (performance.now() - wallStart) / 1000;
  const cpu1 = cpuSeconds(proc.pid);
  const gen1 = process.cpuUsage(gen0);
  const w1 = totals();
  const lag = await target.lag(base);
  const loadedRss = rssBytes(proc.pid);

  running = false;
  await sendLoop;
  await Bun.sleep(1500); // let in-flight frames land
  const end = totals();
  misses.closedCalls = calls.filter((c) => c.ws.isClosed).length;
  const server = await target.serverFrames(base);
  for (const c of calls) {
    c.ws.sendText(stopMessage(c.ids, c.seq));
    c.ws.flush();
    c.ws.close();
  }
  await Bun.sleep(300);
  proc.kill('SIGTERM');
  await proc.exited;
  children.delete(proc);

  const windowIn = w1.sent - w0.sent;
  const firstAudio = calls
    .map((c) => c.stats.firstAudioMs)
    .filter((x): x is number => x !== null)
    .sort((a, b) => a - b);
  // The server also counted each call's `connected` and `start` as frames in.
  const lost = server
    ? end.sent - (server.in - 2 * calls.length) + (server.out - end.received)
    : end.sent - end.received;
  return {
    name: target.name,
    calls: calls.length,
    framesPerSecIn: windowIn / wallS,
    framesPerSecOut: (w1.received - w0.received) / wallS,
    sent: end.sent,
    received: end.received,
    lost,
    serverCpuPct: ((cpu1 - cpu0) / wallS) * 100,
    cpuPerFrameUs: ((cpu1 - cpu0) / windowIn) * 1e6,
    generatorCpuPct: ((gen1.user + gen1.system) / 1e6 / wallS) * 100,
    lagP50: lag.p50,
    lagP99: lag.p99,
    rssPerCallKb: (loadedRss - idleRss) / calls.length / 1024,
    callsWithAudioRate: firstAudio.length / calls.length,
    firstAudioP95Ms: quantile(firstAudio, 0.95),
    frameAnswerRate: end.received / end.sent,
    misses,
  };
}

const chosen = args.only ? targets.filter((t) => t.name.includes(args.only!)) : targets;
const results: Awaited<ReturnType<typeof run>>[] = [];
for (const t of chosen) results.push(await run(t));

const f = (n: number, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : 'n/a';
const rows: [
  string,
  (r: (typeof results)[number]) => string,
  ((a: number, b: number) => string) | null,
  (r: (typeof results)[number]) => number,
][] = [
  ['concurrent calls', (r) => f(r.calls), null, (r) => r.calls],
  ['frames in / s (window)', (r) => f(r.framesPerSecIn), null, (r) => r.framesPerSecIn],
  ['frames out / s (window)', (r) => f(r.framesPerSecOut), null, (r) => r.framesPerSecOut],
  ['frames lost (whole run)', (r) => `${f(r.lost)} of ${f(r.sent)}`, null, (r) => r.lost],
  [
    'server CPU per inbound frame',
    (r) => `${f(r.cpuPerFrameUs, 2)} µs`,
    (a, b) => `${(b / a).toFixed(2)}x`,
    (r) => r.cpuPerFrameUs,
  ],
  ['server CPU', (r) => `${f(r.serverCpuPct)} %`, null, (r) => r.serverCpuPct],
  ['load generator CPU', (r) => `${f(r.generatorCpuPct)} %`, null, (r) => r.generatorCpuPct],
  ['event-loop lag p50', (r) => `${f(r.lagP50, 2)} ms`, null, (r) => r.lagP50],
  ['event-loop lag p99', (r) => `${f(r.lagP99, 2)} ms`, null, (r) => r.lagP99],
  [
    'RSS per call',
    (r) => `${f(r.rssPerCallKb, 1)} KB`,
    (a, b) => `${(b / a).toFixed(2)}x`,
    (r) => r.rssPerCallKb,
  ],
  ['first audio back p95', (r) => `${f(r.firstAudioP95Ms, 1)} ms`, null, (r) => r.firstAudioP95Ms],
  [
    'generator misses: late-skipped / socket-full frames, calls closed',
    (r) => `${f(r.misses.skippedLate)} / ${f(r.misses.droppedFull)}, ${f(r.misses.closedCalls)}`,
    null,
    (r) => r.misses.skippedLate,
  ],
];
console.log(
  `\nVoice load: ${CALLS} Twilio-protocol calls, 1 frame / 20 ms each way, ${WINDOW_S} s window after ${WARMUP_S} s warm-up`,
);
console.log(
  `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Bun ${Bun.version}; generator and server share the machine\n`,
);
console.log(
  `| metric | ${results.map((r) => r.name).join(' | ')} |${results.length === 2 ? ' sipai / floor |' : ''}`,
);
console.log(`|---|${results.map(() => '---:').join('|')}|${results.length === 2 ? '---:|' : ''}`);
for (const [label, show, ratio, value] of rows) {
  const cells = results.map(show).join(' | ');
  const r =
    results.length === 2 && ratio
      ? ` ${ratio(value(results[0]!), value(results[1]!))} |`
      : results.length === 2
        ? ' |'
        : '';
  console.log(`| ${label} | ${cells} |${r}`);
}
const sipai = results.find((r) => r.name.startsWith('sipai'));
if (sipai) {
  const checks = [
    [
      'calls with audio back',
      sipai.callsWithAudioRate,
      `>= ${VOICE_THRESHOLDS.callsWithAudioRate}`,
      sipai.callsWithAudioRate >= VOICE_THRESHOLDS.callsWithAudioRate,
    ],
    [
      'first audio p95 (ms)',
      sipai.firstAudioP95Ms,
      `< ${VOICE_THRESHOLDS.firstAudioP95Ms}`,
      sipai.firstAudioP95Ms < VOICE_THRESHOLDS.firstAudioP95Ms,
    ],
    [
      'frames answered',
      sipai.frameAnswerRate,
      `>= ${VOICE_THRESHOLDS.frameAnswerRate}`,
      sipai.frameAnswerRate >= VOICE_THRESHOLDS.frameAnswerRate,
    ],
  ] as const;
  console.log('\nk6 voice-ws thresholds on the sipai run:');
  for (const [name, v, rule, ok] of checks)
    console.log(`  ${ok ? 'PASS' : 'FAIL'} ${name}: ${f(v, 3)} (${rule})`);
  if (checks.some((c) => !c[3])) process.exitCode = 1;
}
