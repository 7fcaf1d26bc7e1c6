import { decodeMulaw, encodeMulaw } from '../../core/audio/index.ts';
import type { WireProtocol } from '../../core/wire/frames.ts';

/** What a test client heard from the server, with arrival times (performance.now ms). */
export interface Heard {
  audio: { at: number; pcm: Int16Array; bytes: number }[];
  marks: { at: number; name: string }[];
  clears: number[];
  other: unknown[];
}

/**
 * A client playing the provider (or a browser) on a media WebSocket, for end-to-end tests:
 * it speaks the protocol's real wire format, sends 20 ms audio frames, answers marks the way
 * the provider does when playout reaches them, and records what it hears.
 */
export interface MediaClient {
  readonly protocol: WireProtocol;
  /** Rate of the PCM it sends and decodes. */
  readonly sampleRate: number;
  readonly heard: Heard;
  readonly closed: Promise<{ code: number; reason: string }>;
  start(): void;
  sendAudio(pcm: Int16Array): void;
  sendDtmf(digit: string): void;
  stop(): void;
  /** The raw socket, to misbehave on purpose. */
  readonly ws: WebSocket;
}

export interface ClientOptions {
  baseWsUrl: string;
  callId: string;
  token?: string;
  agentId?: string;
  sampleRate?: number;
  /** Native only: subprotocols to offer (API key auth). */
  protocols?: string[];
}

function open(url: string, protocols?: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`could not open ${url}`));
    ws.onclose = (e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`));
  });
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function pcmToBytes(pcm: Int16Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(pcm.slice().buffer);
}

function bytesToPcm(buf: ArrayBuffer): Int16Array {
  return new Int16Array(buf.slice(0, buf.byteLength & ~1));
}

function mulawOut(pcm: Int16Array): string {
  const out = new Uint8Array(pcm.length);
  encodeMulaw(pcm, out);
  return b64(out);
}

function mulawIn(payload: string): Int16Array {
  const bytes = Buffer.from(payload, 'base64');
  const pcm = new Int16Array(bytes.length);
  decodeMulaw(bytes, pcm);
  return pcm;
}

function base(ws: WebSocket, protocol: WireProtocol, sampleRate: number) {
  const heard: Heard = { audio: [], marks: [], clears: [], other: [] };
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
  });
  ws.onerror = () => {};
  return { heard, closed, protocol, sampleRate, ws };
}

/** Plays Twilio Media Streams (JSON text frames, base64 mu-law 8 kHz). */
export async function twilioClient(o: ClientOptions): Promise<MediaClient> {
  const ws = await open(`${o.baseWsUrl}/telephony/twilio/stream`);
  const c = base(ws, 'twilio', 8000);
  const streamSid = `MZ${o.callId.slice(-30).padStart(32, '0')}`;
  let seq = 0;
  let chunk = 0;
  ws.onmessage = (e) => {
    const at = performance.now();
    const msg = JSON.parse(String(e.data));
    if (msg.event === 'media') {
      const pcm = mulawIn(msg.media.payload);
      c.heard.audio.push({ at, pcm, bytes: pcm.length });
    } else if (msg.event === 'mark') {
      c.heard.marks.push({ at, name: msg.mark.name });
      // Twilio reports a mark back once the audio before it has played.
      ws.send(
        JSON.stringify({
          event: 'mark',
          sequenceNumber: String(++seq),
          streamSid,
          mark: { name: msg.mark.name },
        }),
      );
    } else if (msg.event === 'clear') {
      c.heard.clears.push(at);
    } else c.heard.other.push(msg);
  };
  return {
    ...c,
    start() {
      ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
      ws.send(
        JSON.stringify({
          event: 'start',
          sequenceNumber: String(++seq),
          start: {
            accountSid: 'AC00000000000000000000000000000001',
            streamSid,
            callSid: o.callId,
            tracks: ['inbound'],
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
            customParameters: { token: o.token ?? '' },
          },
          streamSid,
        }),
      );
    },
    sendAudio(pcm) {
      chunk++;
      ws.send(
        JSON.stringify({
          event: 'media',
          sequenceNumber: String(++seq),
          media: {
            track: 'inbound',
            chunk: String(chunk),
            timestamp: String(chunk * 20),
            payload: mulawOut(pcm),
          },
          streamSid,
        }),
      );
    },
    sendDtmf(digit) {
      ws.send(
        JSON.stringify({
          event: 'dtmf',
          streamSid,
          sequenceNumber: String(++seq),
          dtmf: { track: 'inbound_track', digit },
        }),
      );
    },
    stop() {
      ws.send(
        JSON.stringify({
          event: 'stop',
          sequenceNumber: String(++seq),
          stop: { accountSid: 'AC1', callSid: o.callId },
          streamSid,
        }),
      );
    },
  };
}

/** Plays Telnyx media streaming (snake_case JSON, PCMU 8 kHz). */
export async function telnyxClient(o: ClientOptions): Promise<MediaClient> {
  const ws = await open(`${o.baseWsUrl}/telephony/telnyx/stream`);
  const c = base(ws, 'telnyx', 8000);
  const streamId = crypto.randomUUID();
  let seq = 0;
  ws.onmessage = (e) => {
    const at = performance.now();
    const msg = JSON.parse(String(e.data));
    if (msg.event === 'media') {
      const pcm = mulawIn(msg.media.payload);
      c.heard.audio.push({ at, pcm, bytes: pcm.length });
    } else if (msg.event === 'mark') {
      c.heard.marks.push({ at, name: msg.mark.name });
      ws.send(
        JSON.stringify({
          event: 'mark',
          sequence_number: String(++seq),
          stream_id: streamId,
          mark: { name: msg.mark.name },
        }),
      );
    } else if (msg.event === 'clear') c.heard.clears.push(at);
    else c.heard.other.push(msg);
  };
  return {
    ...c,
    start() {
      ws.send(JSON.stringify({ event: 'connected', version: '1.0.0' }));
      ws.send(
        JSON.stringify({
          event: 'start',
          sequence_number: String(++seq),
          stream_id: streamId,
          start: {
            call_control_id: o.callId,
            from: '+13122010094',
            to: '+13122123456',
            custom_parameters: { token: o.token ?? '' },
            media_format: { encoding: 'PCMU', sample_rate: 8000, channels: 1 },
          },
        }),
      );
    },
    sendAudio(pcm) {
      seq++;
      ws.send(
        JSON.stringify({
          event: 'media',
          sequence_number: String(seq),
          media: {
            track: 'inbound',
            chunk: String(seq),
            timestamp: String(seq * 20),
            payload: mulawOut(pcm),
          },
          stream_id: streamId,
        }),
      );
    },
    sendDtmf(digit) {
      ws.send(
        JSON.stringify({
          event: 'dtmf',
          sequence_number: String(++seq),
          stream_id: streamId,
          dtmf: { digit },
        }),
      );
    },
    stop() {
      ws.send(
        JSON.stringify({
          event: 'stop',
          sequence_number: String(++seq),
          stream_id: streamId,
          stop: { call_control_id: o.callId },
        }),
      );
    },
  };
}

/** Plays Jambonz `listen`: subprotocol audio.jambonz.org, a metadata frame, binary L16. */
export async function jambonzClient(o: ClientOptions): Promise<MediaClient> {
  const rate = o.sampleRate ?? 8000;
  const ws = await open(`${o.baseWsUrl}/telephony/jambonz/stream?rate=${rate}`, ['audio.jambonz.org']);
  const c = base(ws, 'jambonz', rate);
  ws.onmessage = (e) => {
    const at = performance.now();
    if (e.data instanceof ArrayBuffer) {
      const pcm = bytesToPcm(e.data);
      c.heard.audio.push({ at, pcm, bytes: e.data.byteLength });
      return;
    }
    const msg = JSON.parse(String(e.data));
    if (msg.type === 'mark') {
      c.heard.marks.push({ at, name: msg.data.name });
      ws.send(JSON.stringify({ type: 'mark', data: { name: msg.data.name, event: 'playout' } }));
    } else if (msg.type === 'killAudio') c.heard.clears.push(at);
    else c.heard.other.push(msg);
  };
  return {
    ...c,
    start() {
      ws.send(
        JSON.stringify({
          sampleRate: rate,
          mixType: 'mono',
          callSid: o.callId,
          direction: 'inbound',
          from: '+15083084809',
          to: '+15085710011',
          callStatus: 'in-progress',
          token: o.token ?? '',
        }),
      );
    },
    sendAudio(pcm) {
      ws.send(pcmToBytes(pcm));
    },
    sendDtmf(digit) {
      ws.send(JSON.stringify({ event: 'dtmf', dtmf: digit, duration: 1600 }));
    },
    stop() {
      ws.close(1000, 'hangup');
    },
  };
}

/** Plays a browser on `/realtime/voice`: JSON events with `t`, binary PCM16. */
export async function nativeClient(o: ClientOptions): Promise<MediaClient> {
  const rate = o.sampleRate ?? 16000;
  const query = o.token ? `?token=${encodeURIComponent(o.token)}` : '';
  const ws = await open(`${o.baseWsUrl}/realtime/voice${query}`, o.protocols);
  const c = base(ws, 'native', rate);
  ws.onmessage = (e) => {
    const at = performance.now();
    if (e.data instanceof ArrayBuffer) {
      const pcm = bytesToPcm(e.data);
      c.heard.audio.push({ at, pcm, bytes: e.data.byteLength });
      return;
    }
    const msg = JSON.parse(String(e.data));
    if (msg.t === 'mark') {
      c.heard.marks.push({ at, name: msg.name });
      ws.send(JSON.stringify({ t: 'mark', name: msg.name }));
    } else if (msg.t === 'clear') c.heard.clears.push(at);
    else c.heard.other.push(msg);
  };
  return {
    ...c,
    start() {
      ws.send(
        JSON.stringify({
          t: 'start',
          callId: o.callId,
          agentId: o.agentId ?? 'echo',
          sampleRate: rate,
          encoding: 'pcm16',
        }),
      );
    },
    sendAudio(pcm) {
      ws.send(pcmToBytes(pcm));
    },
    sendDtmf(digit) {
      ws.send(JSON.stringify({ t: 'dtmf', digit }));
    },
    stop() {
      ws.send(JSON.stringify({ t: 'stop' }));
    },
  };
}

/** Sends `pcm` in 20 ms frames at real-time pace (drift-free), then resolves. */
export async function streamRealtime(client: MediaClient, pcm: Int16Array): Promise<void> {
  const frame = (client.sampleRate * 20) / 1000;
  const started = performance.now();
  for (let i = 0, n = 0; i < pcm.length; i += frame, n++) {
    const chunk = new Int16Array(frame);
    chunk.set(pcm.subarray(i, Math.min(i + frame, pcm.length)));
    client.sendAudio(chunk);
    const due = started + (n + 1) * 20;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
  }
}

/**
 * Sends silence in 20 ms frames, as a caller's open microphone does, until `cond` holds; throws
 * (with `diagnose`'s account) if it has not after `timeoutMs`. The bound only fails a hang.
 */
export async function streamSilenceUntil(
  client: MediaClient,
  cond: () => boolean,
  timeoutMs: number,
  what: string,
  diagnose?: () => Promise<string>,
): Promise<void> {
  const frame = new Int16Array((client.sampleRate * 20) / 1000);
  const started = performance.now();
  let due = started;
  while (!cond()) {
    if (performance.now() - started > timeoutMs) {
      throw new Error(`timed out waiting for ${what}${diagnose ? `\n${await diagnose()}` : ''}`);
    }
    client.sendAudio(frame);
    due += 20;
    // Behind by more than two frames (a starved machine): carry on from now rather than burst.
    if (due < performance.now() - 40) due = performance.now();
    await Bun.sleep(Math.max(1, Math.ceil(due - performance.now())));
  }
}

/** The `call.started` event a native client hears first: the id the server gave its call. */
function callStartedEvent(msg: unknown): { callId: string; clientCallId: string } | null {
  const m = msg as { t?: string; name?: string; data?: { callId?: unknown; clientCallId?: unknown } };
  if (m?.t !== 'event' || m.name !== 'call.started' || typeof m.data?.callId !== 'string') return null;
  return { callId: m.data.callId, clientCallId: String(m.data.clientCallId) };
}

/**
 * The id the call is known by (timeline, `GET /v1/calls/{id}`, `media.sessions`): for a native
 * client the namespaced id from its `call.started` event, for a provider stream the id it sent.
 */
export async function startedCallId(
  client: MediaClient,
  sentCallId: string,
  timeoutMs = 15_000,
): Promise<string> {
  if (client.protocol !== 'native') return sentCallId;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const msg of client.heard.other) {
      const started = callStartedEvent(msg);
      if (started) return started.callId;
    }
    if (Date.now() > deadline) throw new Error(`no call.started event for ${sentCallId}`);
    await Bun.sleep(10);
  }
}
