/**
 * Talk to an agent from a terminal, over the native protocol (docs/realtime-protocol.md): each
 * line you give is spoken by a synthetic caller (flite's `slt` voice, a different voice from the
 * agent's) into `/realtime/voice`, streamed at real time like a microphone, and the script
 * prints what the agent recognised and what it answered, with the turn's latency.
 *
 *   npm run call -- --key sk_live_… "what are your opening hours" "goodbye"
 *   npm run call -- --key sk_live_… --text "where are you located"     # typed, not spoken
 *   npm run call -- --key sk_live_… --out call.wav "are you open today"  # keep the agent's audio
 *
 * `--url` defaults to `SIPAI_URL`, else http://localhost:3000 (npm start); `--agent` to npm
 * start's demo front desk in the key's account. The key is an API key (`SIPAI_API_KEY` also
 * works): the script mints a realtime token with it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_AGENT_NAME } from '../control/demo-agent.ts';
import { parseWav } from '../core/agent/providers/tts/spawn-to-file.ts';
import { Resampler } from '../core/audio/resampler.ts';

const RATE = 16000;
const FRAME = RATE / 50;

/** A caller's line as 16 kHz PCM, spoken by flite. */
export function speakAsCaller(text: string, voice = 'slt'): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'sipai-call-'));
  try {
    const wav = join(dir, 'line.wav');
    execFileSync('flite', ['-voice', voice, '-t', text, '-o', wav], { stdio: 'ignore' });
    const { pcm, sampleRate } = parseWav(readFileSync(wav));
    return sampleRate === RATE ? pcm : new Resampler(sampleRate, RATE).process(pcm);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A mono PCM16 WAV file's bytes. */
function wavBytes(pcm: Int16Array, rate: number): Uint8Array {
  const out = Buffer.alloc(44 + pcm.length * 2);
  out.write('RIFF', 0);
  out.writeUInt32LE(36 + pcm.length * 2, 4);
  out.write('WAVEfmt ', 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36);
  out.writeUInt32LE(pcm.length * 2, 40);
  Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).copy(out, 44);
  return out;
}

export interface CallOptions {
  url: string;
  key: string;
  agentId?: string;
  lines: string[];
  typed: boolean;
  /** Longest wait for the agent to finish one utterance. */
  turnTimeoutMs?: number;
  print?: (line: string) => void;
}

export interface CallTranscript {
  /** What the agent heard (spoken lines) or was sent (typed ones). */
  heard: string[];
  /** Every utterance the agent played, in order, as the caller heard it. */
  said: string[];
  /** End of speech → first agent audio, per spoken turn. */
  turnMs: number[];
  audio: Int16Array[];
}

/** The id of npm start's demo agent in the key's account (found by its name). */
async function demoAgentId(url: string, auth: Record<string, string>): Promise<string> {
  const res = await fetch(new URL('/v1/agents?limit=100', url), { headers: auth });
  const body = (await res.json()) as { data?: { id: string; name: string }[] };
  const demo = body.data?.find((a) => a.name === DEMO_AGENT_NAME);
  if (!demo) throw new Error(`no agent named "${DEMO_AGENT_NAME}" in this account: pass --agent agt_…`);
  return demo.id;
}

/** Runs one call: the greeting, then each line as a turn, then `stop`. */
export async function runCall(opts: CallOptions): Promise<CallTranscript> {
  const print = opts.print ?? console.log;
  const auth = { authorization: `Bearer ${opts.key}` };
  const agentId = opts.agentId ?? (await demoAgentId(opts.url, auth));
  const tokenRes = await fetch(new URL('/v1/realtime/tokens', opts.url), {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ agentId }),
  });
  const token = (await tokenRes.json()) as {
    token?: string;
    url?: string;
    agentId?: string;
    error?: unknown;
  };
  if (!tokenRes.ok || !token.token)
    throw new Error(`could not mint a realtime token: ${JSON.stringify(token)}`);
  const wsUrl = new URL('/realtime/voice', opts.url);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  wsUrl.searchParams.set('token', token.token);
  const ws = new WebSocket(wsUrl);
  ws.binaryType = 'arraybuffer';
  const out: CallTranscript = { heard: [], said: [], turnMs: [], audio: [] };
  let ended = false;
  ws.onmessage = (e) => {
    if (e.data instanceof ArrayBuffer) {
      out.audio.push(new Int16Array(e.data.slice(0, e.data.byteLength & ~1)));
      return;
    }
    const msg = JSON.parse(String(e.data));
    if (msg.t === 'mark') ws.send(JSON.stringify({ t: 'mark', name: msg.name }));
    else if (msg.t === 'transcript' && msg.final) {
      out.heard.push(msg.text);
      print(`  (agent heard: "${msg.text}")`);
    } else if (msg.t === 'event' && msg.name === 'agent.said') {
      out.said.push(msg.data.text);
      print(`agent: ${msg.data.text}${msg.data.interrupted ? ' [interrupted]' : ''}`);
    } else if (msg.t === 'event' && msg.name === 'turn.latency') {
      out.turnMs.push(msg.data.turnMs);
      print(`  (end of your speech → agent audio: ${msg.data.turnMs} ms)`);
    } else if (msg.t === 'error') print(`error: ${msg.code}: ${msg.message}`);
    else if (msg.t === 'stop') ended = true;
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`could not open ${wsUrl.origin}/realtime/voice`));
  });
  const closed = new Promise<void>((r) => {
    ws.onclose = () => {
      ended = true;
      r();
    };
  });
  ws.send(
    JSON.stringify({
      t: 'start',
      callId: `cli-${crypto.randomUUID()}`,
      sampleRate: RATE,
      encoding: 'pcm16',
      agentId,
    }),
  );
  const silence = new Int16Array(FRAME);
  /** Streams audio at real time: 20 ms frames on a drift-free schedule. */
  const stream = async (pcm: Int16Array) => {
    const t0 = performance.now();
    for (let i = 0, n = 0; i < pcm.length && !ended; i += FRAME, n++) {
      const frame = new Int16Array(FRAME);
      frame.set(pcm.subarray(i, Math.min(i + FRAME, pcm.length)));
      ws.send(frame);
      const wait = t0 + (n + 1) * 20 - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
  };
  /** Silence (as a phone line sends it) until the agent has finished `count` utterances. */
  const waitForSaid = async (count: number) => {
    const deadline = performance.now() + (opts.turnTimeoutMs ?? 60_000);
    while (out.said.length < count && !ended) {
      if (performance.now() > deadline) throw new Error('the agent did not answer');
      await stream(silence);
    }
  };
  await waitForSaid(1);
  for (const line of opts.lines) {
    if (ended) break;
    print(`you: ${line}`);
    const before = out.said.length;
    if (opts.typed) ws.send(JSON.stringify({ t: 'text', text: line }));
    else await stream(speakAsCaller(line));
    await waitForSaid(before + 1);
  }
  if (!ended) ws.send(JSON.stringify({ t: 'stop', reason: 'caller_hangup' }));
  await closed;
  return out;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.SIPAI_URL || 'http://localhost:3000' },
      key: { type: 'string', default: process.env.SIPAI_API_KEY },
      agent: { type: 'string' },
      text: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  if (!values.key || positionals.length === 0) {
    console.error(
      'usage: npm run call -- --key <API key> [--url URL] [--agent agt_…] [--text] [--out file.wav] "line" …',
    );
    process.exit(2);
  }
  const result = await runCall({
    url: values.url!,
    key: values.key,
    agentId: values.agent,
    lines: positionals,
    typed: values.text!,
  });
  if (values.out) {
    const all = new Int16Array(result.audio.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of result.audio) {
      all.set(a, at);
      at += a.length;
    }
    writeFileSync(values.out, wavBytes(all, RATE));
    console.log(`agent audio written to ${values.out} (${(all.length / RATE).toFixed(1)} s)`);
  }
}
