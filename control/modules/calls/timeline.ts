/**
 * What a call's timeline says about it: the transcript and the latency summary. Pure functions
 * over recorded events, shared by the API (`GET /v1/calls/{id}`) and the recorder (which stores
 * the summary when the call ends).
 */

/** One recorded event, as `call_events` holds it. */
export interface RecordedEvent {
  type: string;
  at: Date;
  tMs: number | null;
  data: Record<string, unknown> | null;
}

/** Latency fields core's timeline events may carry, in milliseconds (docs/architecture.md, "A call, end to end", step 4). */
export const LATENCY_FIELDS = [
  'endpointingMs',
  'sttMs',
  'llmFirstTokenMs',
  'ttsFirstAudioMs',
  'turnMs',
] as const;

export type LatencyField = (typeof LATENCY_FIELDS)[number];

export interface LatencyStats {
  count: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

/** Per latency field, its distribution over the call's turns; null when no event carried it. */
export type LatencySummary = { turns: number } & { [F in LatencyField]: LatencyStats | null };

/** One line of the transcript: who spoke (or typed, or pressed a key), what, and when. */
export interface TranscriptEntry {
  role: 'user' | 'agent';
  text: string;
  /** When it started: the event's time moved back to `startMs` when both are known. */
  at: string;
  /** Milliseconds since the call started; null when core did not report it. */
  startMs: number | null;
  endMs: number | null;
  /** How the caller's words came: recognised speech, typed text, or a keypad digit. */
  source?: 'speech' | 'text' | 'dtmf';
  /** The agent was cut off: `text` is what it meant to say, not all of it was heard. */
  interrupted?: boolean;
  /** The recogniser judged the speech out of what it can understand; `text` is its best guess. */
  rejected?: boolean;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

function stats(values: number[]): LatencyStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    max: sorted[sorted.length - 1]!,
    mean: Math.round((sum / sorted.length) * 10) / 10,
  };
}

/** The event core writes once per answered turn with all of that turn's timings. */
export const TURN_LATENCY_EVENT = 'turn.latency';

/**
 * Turns and the distribution of every latency field. When the call has `turn.latency` events
 * (one per answered turn, every timing of it), only those are read, so a timing that another
 * event repeats (`endpointingMs` on `turn.completed`) is not counted twice; older timelines
 * without them are read from every event's data. Turns: `turn.completed` events, or the
 * distinct turns `turn.latency` reports, whichever is more.
 */
export function latencySummary(events: readonly RecordedEvent[]): LatencySummary {
  const values = Object.fromEntries(LATENCY_FIELDS.map((f) => [f, [] as number[]])) as Record<
    LatencyField,
    number[]
  >;
  const hasTurnLatency = events.some((e) => e.type === TURN_LATENCY_EVENT);
  let completed = 0;
  const latencyTurns = new Set<unknown>();
  for (const e of events) {
    if (e.type === 'turn.completed') completed++;
    if (e.type === TURN_LATENCY_EVENT) latencyTurns.add(e.data?.turn ?? latencyTurns.size);
    if (!e.data || (hasTurnLatency && e.type !== TURN_LATENCY_EVENT)) continue;
    for (const f of LATENCY_FIELDS) {
      const v = e.data[f];
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) values[f].push(v);
    }
  }
  const summary = { turns: Math.max(completed, latencyTurns.size) } as LatencySummary;
  for (const f of LATENCY_FIELDS) summary[f] = stats(values[f]);
  return summary;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** One event as a transcript entry, or null when it carries no words. */
function entryOf(e: RecordedEvent): TranscriptEntry | null {
  const data = e.data ?? {};
  let role: TranscriptEntry['role'];
  let text: unknown;
  const extra: Pick<TranscriptEntry, 'source' | 'interrupted' | 'rejected'> = {};
  switch (e.type) {
    case 'transcript.final':
      role = 'user';
      text = data.text;
      extra.source = 'speech';
      if (data.rejected === true) extra.rejected = true;
      break;
    case 'user.text':
      role = 'user';
      text = data.text;
      extra.source = 'text';
      break;
    case 'dtmf':
      role = 'user';
      text = data.digit;
      extra.source = 'dtmf';
      break;
    case 'agent.said':
      role = 'agent';
      text = data.text;
      extra.interrupted = data.interrupted === true;
      break;
    default:
      return null;
  }
  if (typeof text !== 'string' || text.trim().length === 0) return null;
  // Speech has its own span; typed text and keys happened at the event.
  const tMs = num(e.tMs);
  const startMs = num(data.startMs) ?? tMs;
  const endMs = num(data.endMs) ?? startMs;
  const at = startMs !== null && tMs !== null ? new Date(e.at.getTime() - (tMs - startMs)) : e.at;
  return { role, text, at: at.toISOString(), startMs, endMs, ...extra };
}

/**
 * The words of the call, in the order they were spoken: the caller's recognised speech
 * (`transcript.final`, rejected ones marked), typed text (`user.text`) and keypad digits
 * (`dtmf`), and what the agent said (`agent.said`, marked when cut off). Partial transcripts
 * are not part of it. An utterance is recorded when it ends, so entries are ordered by when
 * they started (`startMs`), recording order breaking ties and placing entries without one.
 */
export function transcriptOf(events: readonly RecordedEvent[]): TranscriptEntry[] {
  const keyed: { entry: TranscriptEntry; key: number }[] = [];
  let last = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    const entry = entryOf(e);
    if (!entry) continue;
    last = entry.startMs ?? last;
    keyed.push({ entry, key: last });
  }
  return keyed.sort((a, b) => a.key - b.key).map((k) => k.entry);
}
