import { type Agent, allAgents } from './agents.ts';
import { ApiFailure, api, messageOf } from './api.ts';
import { fill, h, ms } from './dom.ts';
import { field, notice, say, select } from './forms.ts';

/**
 * `#/talk`: a browser call to an agent over the native realtime socket (docs/realtime-protocol.md).
 * A token from `POST /v1/realtime/tokens` opens the socket (never the API key); the microphone
 * goes out as PCM16 16 kHz through an AudioWorklet; agent audio is scheduled back to back on
 * the AudioContext's clock, so it plays without gaps, and dropped at once on `clear`.
 */

const RATE = 16_000;
/** Agent audio is started this far ahead when nothing is playing, to ride out network jitter. */
const LEAD_SEC = 0.12;
/** How long starting the page's audio may take before the call goes on without it. */
const AUDIO_START_MS = 3000;

/**
 * Starts `ctx`; false if it has not started within AUDIO_START_MS. Firefox never settles
 * `resume()` on a machine with no sound output device; the call then goes on, the agent's words
 * as text, and its audio plays if the context starts later.
 */
async function audioStarted(ctx: AudioContext): Promise<boolean> {
  let timer = 0;
  const gaveUp = new Promise<boolean>((resolve) => {
    timer = window.setTimeout(() => resolve(false), AUDIO_START_MS);
  });
  try {
    return await Promise.race([ctx.resume().then(() => true), gaveUp]);
  } finally {
    window.clearTimeout(timer);
  }
}

/** Plays PCM16 chunks gap-free; echoes marks when playout reaches them; stops on `clear`. */
class Player {
  private nextTime = 0;
  private readonly sources = new Set<AudioBufferSourceNode>();
  private readonly marks = new Set<number>();

  constructor(
    private readonly ctx: AudioContext,
    private readonly out: AudioNode,
  ) {}

  play(pcm: Int16Array): void {
    if (pcm.length === 0) return;
    const buffer = this.ctx.createBuffer(1, pcm.length, RATE);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.out);
    // Back to back with what is queued; after a gap, a little ahead of now.
    const start = Math.max(this.nextTime, this.ctx.currentTime + LEAD_SEC);
    source.start(start);
    this.nextTime = start + buffer.duration;
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
  }

  /** Calls `reached` once everything queued so far has played. */
  mark(reached: () => void): void {
    const waitMs = Math.max(0, (this.nextTime - this.ctx.currentTime) * 1000);
    if (waitMs === 0) {
      reached();
      return;
    }
    const timer = window.setTimeout(() => {
      this.marks.delete(timer);
      reached();
    }, waitMs);
    this.marks.add(timer);
  }

  /** Barge-in: silence now, drop the queue; marks after dropped audio need no echo. */
  clear(): void {
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
    }
    this.sources.clear();
    for (const timer of this.marks) window.clearTimeout(timer);
    this.marks.clear();
    this.nextTime = 0;
  }

  /** Seconds of queued audio still to play. */
  remaining(): number {
    return Math.max(0, this.nextTime - this.ctx.currentTime);
  }
}

interface TurnLatency {
  turn: number;
  endpointingMs?: number;
  sttMs?: number;
  llmFirstTokenMs?: number;
  ttsFirstAudioMs?: number;
  turnMs?: number;
}

/** The stages of a turn, in the order they happen, as the chart colours them. */
const STAGES: { key: keyof TurnLatency | 'other'; label: string; cls: string }[] = [
  { key: 'endpointingMs', label: 'end of turn (silence)', cls: 'seg-endpointing' },
  { key: 'sttMs', label: 'speech to text', cls: 'seg-stt' },
  { key: 'llmFirstTokenMs', label: 'first reply text', cls: 'seg-llm' },
  { key: 'ttsFirstAudioMs', label: 'first synthesised audio', cls: 'seg-tts' },
  { key: 'other', label: 'pipeline and playout', cls: 'seg-other' },
];

/** One horizontal bar per turn, stages stacked, widths relative to the slowest turn. */
export function latencyChart(turns: TurnLatency[]): HTMLElement {
  const longest = Math.max(1, ...turns.map((t) => t.turnMs ?? 0));
  const rows = turns.map((t) => {
    const known = STAGES.slice(0, 4).reduce(
      (sum, s) => sum + ((t[s.key as keyof TurnLatency] as number) ?? 0),
      0,
    );
    const values = STAGES.map((s) =>
      s.key === 'other'
        ? Math.max(0, (t.turnMs ?? known) - known)
        : ((t[s.key as keyof TurnLatency] as number) ?? 0),
    );
    const bar = h('div', { class: 'bar', 'aria-hidden': 'true' });
    STAGES.forEach((s, i) => {
      if (values[i] <= 0) return;
      const seg = h('span', { class: s.cls, title: `${s.label}: ${ms(values[i])}` });
      seg.style.width = `${(values[i] / longest) * 100}%`;
      bar.append(seg);
    });
    const described = STAGES.map((s, i) => `${s.label} ${ms(values[i])}`).join(', ');
    return h(
      'div',
      { class: 'turn', 'data-turn': t.turn, 'data-turn-ms': t.turnMs ?? '' },
      h('span', {}, `Turn ${t.turn}: ${ms(t.turnMs)}`),
      bar,
      h('span', { class: 'sr-only' }, described),
    );
  });
  return h(
    'div',
    {},
    h('div', { class: 'chart' }, rows),
    h(
      'ul',
      { class: 'legend', 'aria-hidden': 'true' },
      STAGES.map((s) => h('li', {}, h('span', { class: `swatch ${s.cls}` }), s.label)),
    ),
  );
}

/** The DOM a call writes to. */
interface TalkUi {
  root: HTMLElement;
  status: HTMLElement;
  transcript: HTMLOListElement;
  chart: HTMLElement;
  meter: HTMLSpanElement;
  /** What the agent is saying now, before it is in the transcript. */
  caption: HTMLElement;
  /** The loudest agent audio played, in words. */
  peak: HTMLElement;
  callLink: HTMLElement;
  onEnded: () => void;
}

/** One call: socket, microphone, playback. */
class TalkSession {
  private ws: WebSocket | null = null;
  private ctx: AudioContext | null = null;
  private mic: MediaStream | null = null;
  private player: Player | null = null;
  private meterTimer = 0;
  private ended = false;
  private partialUser: HTMLLIElement | null = null;
  /** Sentences queued for playout that no `agent.said` has accounted for yet, in order. */
  private captionSentences: string[] = [];
  private readonly turns: TurnLatency[] = [];
  private peakRms = 0;
  private agentSamples = 0;
  private micFrames = 0;

  constructor(private readonly ui: TalkUi) {}

  async start(agentId: string): Promise<void> {
    this.setState('connecting');
    say(this.ui.status, 'info', 'Connecting…');
    const { token } = await api<{ token: string }>('POST', '/realtime/tokens', { agentId });
    const ctx = new AudioContext({ latencyHint: 'interactive' });
    this.ctx = ctx;
    const audioNote = (await audioStarted(ctx))
      ? ''
      : ' This browser’s audio did not start (is there a sound output device?): the agent’s replies show as text; type or use the keypad.';
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    analyser.connect(ctx.destination);
    this.player = new Player(ctx, analyser);
    this.watchLevel(analyser);
    let micNote = '';
    try {
      await this.openMicrophone(ctx);
    } catch (err) {
      micNote = ` No microphone (${messageOf(err)}): use the keypad or type.`;
    }
    // Same origin as the page, whatever PUBLIC_BASE_URL says: the CSP allows nothing else.
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(
      `${scheme}//${location.host}/v1/realtime/voice?token=${encodeURIComponent(token)}`,
      'sipai.v1',
    );
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      const callId = `console_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
      this.send({ t: 'start', callId, agentId, sampleRate: RATE, encoding: 'pcm16' });
      this.setState('live');
      say(this.ui.status, 'ok', audioNote ? `Connected.${audioNote}` : `Connected: speak now.${micNote}`);
    };
    ws.onmessage = (event) => this.onMessage(event.data);
    ws.onclose = (event) => {
      if (!this.ended) {
        this.system(`Connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''}).`);
        say(this.ui.status, 'info', 'The call has ended.');
      }
      this.finish();
    };
  }

  private async openMicrophone(ctx: AudioContext): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this page cannot use a microphone here');
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.mic = mic;
    await ctx.audioWorklet.addModule('/console/mic-worklet.js');
    const node = new AudioWorkletNode(ctx, 'pcm16-capture', { numberOfOutputs: 1 });
    node.port.onmessage = (event: MessageEvent<ArrayBuffer>) => {
      if (this.ws?.readyState !== WebSocket.OPEN || this.ended) return;
      this.ws.send(event.data);
      this.micFrames++;
      if (this.micFrames % 25 === 0) this.ui.root.dataset.micFrames = String(this.micFrames);
    };
    ctx.createMediaStreamSource(mic).connect(node);
    // The node outputs silence; connected, so the graph keeps pulling it.
    node.connect(ctx.destination);
  }

  /** The agent's level as played, for the meter and (as data attributes) for tests. */
  private watchLevel(analyser: AnalyserNode): void {
    const samples = new Float32Array(analyser.fftSize);
    this.meterTimer = window.setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      this.ui.meter.style.width = `${Math.min(100, rms * 400)}%`;
      if (rms > this.peakRms) {
        this.peakRms = rms;
        this.ui.root.dataset.agentPeakRms = rms.toFixed(4);
        this.ui.peak.textContent = `Loudest so far: ${(20 * Math.log10(rms)).toFixed(0)} dBFS (RMS)`;
      }
    }, 50);
  }

  send(message: Record<string, unknown>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  dtmf(digit: string): void {
    this.send({ t: 'dtmf', digit });
    this.line('user', `pressed ${digit}`);
  }

  text(value: string): void {
    this.send({ t: 'text', text: value });
    this.line('user', value);
  }

  hangUp(): void {
    this.send({ t: 'stop', reason: 'user_hangup' });
    this.ws?.close(1000, 'hung up');
    say(this.ui.status, 'info', 'You hung up.');
    this.ended = true;
    this.finish();
  }

  get live(): boolean {
    return this.ws !== null && !this.ended;
  }

  private onMessage(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      const pcm = new Int16Array(data, 0, data.byteLength >> 1);
      for (const s of pcm) if (s !== 0) this.agentSamples++;
      this.ui.root.dataset.agentSamples = String(this.agentSamples);
      this.player?.play(pcm);
      return;
    }
    let m: { t?: string; [k: string]: unknown };
    try {
      m = JSON.parse(String(data));
    } catch {
      return;
    }
    switch (m.t) {
      case 'mark':
        this.player?.mark(() => this.send({ t: 'mark', name: m.name }));
        break;
      case 'clear':
        // Barge-in: everything queued was dropped, so nothing in the caption will be said.
        this.player?.clear();
        this.captionSentences = [];
        this.showCaption();
        break;
      case 'transcript':
        this.onTranscript(String(m.text ?? ''), m.final === true);
        break;
      case 'agent_text':
        this.onAgentText(String(m.text ?? ''), m.final === true);
        break;
      case 'event':
        this.onEvent(String(m.name), (m.data ?? {}) as Record<string, unknown>);
        break;
      case 'error':
        say(this.ui.status, 'error', `The call failed: ${String(m.message)} (${String(m.code)})`);
        break;
      case 'stop':
        this.ended = true;
        say(this.ui.status, 'info', `The call has ended (${String(m.reason ?? 'stopped')}).`);
        this.finish();
        break;
    }
  }

  private onTranscript(text: string, final: boolean): void {
    if (!final) {
      this.partialUser ??= this.line('user', '');
      this.partialUser.lastChild!.textContent = text;
      return;
    }
    if (this.partialUser) {
      this.partialUser.lastChild!.textContent = text;
      this.partialUser = null;
    } else {
      this.line('user', text);
    }
  }

  /**
   * `agent_text` partials come as each sentence is queued for playout, possibly before the reply
   * ahead of it has finished playing, so they only feed the live caption. The transcript gets
   * the agent's words from `agent.said`, which says exactly what the caller heard (the
   * `agent_text` final repeats it).
   */
  private onAgentText(text: string, final: boolean): void {
    if (final || !text) return;
    this.captionSentences.push(text);
    this.showCaption();
  }

  private onAgentSaid(text: string, interrupted: boolean): void {
    const heard = squash(text);
    // The sentences this utterance played leave the caption; the next reply's stay.
    while (this.captionSentences.length > 0 && heard.includes(squash(this.captionSentences[0]))) {
      this.captionSentences.shift();
    }
    this.showCaption();
    if (!text) return;
    const line = this.line('agent', text);
    if (interrupted) line.classList.add('interrupted');
    line.dataset.final = 'true';
  }

  private showCaption(): void {
    const words = this.captionSentences.join(' ');
    this.ui.caption.hidden = words === '';
    fill(this.ui.caption, h('span', { class: 'who-said' }, 'Agent is saying:'), words);
  }

  private onEvent(name: string, data: Record<string, unknown>): void {
    if (name === 'call.started') {
      const id = String(data.callId);
      this.ui.root.dataset.callId = id;
      fill(
        this.ui.callLink,
        'Call ',
        h('a', { href: `#/calls/${encodeURIComponent(id)}` }, h('code', {}, id)),
      );
    } else if (name === 'agent.said') {
      this.onAgentSaid(String(data.text ?? ''), data.interrupted === true);
    } else if (name === 'turn.latency') {
      this.turns.push(data as unknown as TurnLatency);
      fill(this.ui.chart, latencyChart(this.turns));
      this.ui.root.dataset.turns = String(this.turns.length);
    } else if (name === 'barge_in') {
      this.system('You interrupted the agent.');
    } else if (name === 'agent.error' || name === 'agent.unavailable') {
      this.system(
        `${name}: ${String(data.message ?? (data.reasons as string[] | undefined)?.join('; ') ?? '')}`,
      );
    } else if (name === 'call.ended') {
      this.system(`Call ended: ${String(data.reason)} after ${ms(Number(data.durationMs))}.`);
    }
  }

  private line(role: 'user' | 'agent', text: string): HTMLLIElement {
    const li = h(
      'li',
      { class: role, 'data-role': role },
      h('span', { class: 'who-said' }, role === 'user' ? 'You:' : 'Agent:'),
      h('span', {}, text),
    );
    this.ui.transcript.append(li);
    li.scrollIntoView({ block: 'nearest' });
    return li;
  }

  private system(text: string): void {
    this.ui.transcript.append(h('li', { class: 'system' }, text));
  }

  private setState(state: string): void {
    this.ui.root.dataset.state = state;
  }

  /** Stops the microphone; lets queued agent audio finish, then closes the audio context. */
  finish(): void {
    if (this.ui.root.dataset.state === 'ended') return;
    this.setState('ended');
    for (const track of this.mic?.getTracks() ?? []) track.stop();
    this.mic = null;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
    const ctx = this.ctx;
    const tail = (this.player?.remaining() ?? 0) * 1000 + 300;
    window.setTimeout(() => {
      window.clearInterval(this.meterTimer);
      this.ui.meter.style.width = '0';
      void ctx?.close();
    }, tail);
    this.ui.onEnded();
  }
}

/** Text compared by words: case, spacing and punctuation aside. */
function squash(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .trim();
}

let current: TalkSession | null = null;

/** Ends the call in progress, if any (leaving the Talk view). */
export function endTalk(): void {
  if (current?.live) current.hangUp();
  current = null;
}

/** `#/talk?agent=<id>`. */
export async function talkView(main: HTMLElement, query: URLSearchParams): Promise<void> {
  const agents: Agent[] = await allAgents();
  const wanted = query.get('agent');
  const initial =
    agents.find((a) => a.id === wanted) ?? agents.find((a) => a.name === 'Demo front desk') ?? agents[0];
  const agentSelect = select(
    agents.map((a): [string, string] => [a.id, a.ready ? a.name : `${a.name} (not ready)`]),
    initial?.id ?? '',
  );
  const startButton = h('button', { type: 'button' }, 'Start call');
  const hangUpButton = h('button', { type: 'button', class: 'danger', disabled: true }, 'Hang up');
  const status = notice();
  status.setAttribute('role', 'status');
  const transcript = h('ol', { class: 'transcript', 'aria-live': 'polite', 'aria-label': 'Transcript' });
  const caption = h('p', { class: 'caption', 'aria-live': 'polite', hidden: true });
  const chart = h('div', {}, h('p', { class: 'muted' }, 'Each turn’s latency appears here.'));
  const meterFill = h('span');
  const peak = h('p', { class: 'hint' }, 'Silent so far.');
  const callLink = h('p', { class: 'muted' });
  const keypadButtons = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'].map((d) =>
    h('button', { type: 'button', class: 'secondary', 'aria-label': `Key ${d}`, disabled: true }, d),
  );
  const textInput = h('input', {
    type: 'text',
    id: 'talk-text',
    autocomplete: 'off',
    disabled: true,
    maxlength: 4096,
  });
  const sendButton = h('button', { type: 'submit', disabled: true }, 'Send');
  const textForm = h(
    'form',
    { class: 'row' },
    h('div', { class: 'field' }, h('label', { for: 'talk-text' }, 'Type instead of speaking'), textInput),
    sendButton,
  );
  const root = h(
    'section',
    { id: 'talk', 'data-state': 'idle', 'aria-labelledby': 'talk-title' },
    h('h1', { id: 'talk-title' }, 'Talk to an agent'),
    h(
      'div',
      { class: 'card' },
      h(
        'div',
        { class: 'row' },
        field({ field: 'agentId', label: 'Agent' }, agentSelect),
        startButton,
        hangUpButton,
      ),
      h(
        'p',
        { class: 'hint' },
        'Your microphone streams to the agent; use headphones so it does not hear itself.',
      ),
      status,
      callLink,
    ),
    h(
      'div',
      { class: 'talk-grid' },
      h('div', { class: 'card' }, h('h2', {}, 'Transcript'), transcript, textForm),
      h(
        'div',
        {},
        h(
          'div',
          { class: 'card' },
          h('h2', { id: 'level-title' }, 'Agent audio'),
          h('div', { class: 'meter', 'aria-hidden': 'true' }, meterFill),
          peak,
        ),
        h('div', { class: 'card' }, h('h2', {}, 'Latency per turn'), chart),
        h(
          'div',
          { class: 'card' },
          h('h2', { id: 'keypad-title' }, 'Keypad'),
          h('div', { class: 'keypad', role: 'group', 'aria-labelledby': 'keypad-title' }, keypadButtons),
        ),
      ),
    ),
  );
  fill(main, root);
  if (agents.length === 0) {
    say(status, 'info', 'No agents yet: create one under Agents first.');
    startButton.disabled = true;
    return;
  }
  const setLive = (live: boolean) => {
    startButton.disabled = live;
    agentSelect.disabled = live;
    hangUpButton.disabled = !live;
    textInput.disabled = !live;
    sendButton.disabled = !live;
    for (const b of keypadButtons) b.disabled = !live;
  };
  startButton.addEventListener('click', async () => {
    endTalk();
    transcript.replaceChildren();
    caption.replaceChildren();
    caption.hidden = true;
    fill(chart);
    fill(callLink);
    peak.textContent = 'Silent so far.';
    for (const key of ['callId', 'agentPeakRms', 'agentSamples', 'micFrames', 'turns'])
      delete root.dataset[key];
    const session = new TalkSession({
      root,
      status,
      transcript,
      chart,
      meter: meterFill,
      caption,
      peak,
      callLink,
      onEnded: () => {
        setLive(false);
        startButton.focus();
      },
    });
    current = session;
    setLive(true);
    try {
      await session.start(agentSelect.value);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) return;
      say(status, 'error', `Could not start the call: ${messageOf(err)}`);
      session.finish();
    }
  });
  hangUpButton.addEventListener('click', () => current?.hangUp());
  keypadButtons.forEach((b) => {
    b.addEventListener('click', () => current?.dtmf(b.textContent ?? ''));
  });
  textForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = textInput.value.trim();
    if (!value || !current?.live) return;
    current.text(value);
    textInput.value = '';
  });
}
