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

/** Latency fields core's timeline events may carry, in milliseconds (ARCHITECTURE.md, step 4). */
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

export interface TranscriptEntry {
  role: 'user' | 'agent';
  text: string;
  at: string;
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

/**
 * Turns and the distribution of every latency field found in the events' data (today core
 * reports `endpointingMs` on `turn.completed`; STT, LLM and TTS timings join as they appear).
 */
export function latencySummary(events: readonly RecordedEvent[]): LatencySummary {
  const values = Object.fromEntries(LATENCY_FIELDS.map((f) => [f, [] as number[]])) as Record<
    LatencyField,
    number[]
  >;
  let turns = 0;
  for (const e of events) {
    if (e.type === 'turn.completed') turns++;
    if (!e.data) continue;
    for (const f of LATENCY_FIELDS) {
      const v = e.data[f];
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) values[f].push(v);
    }
  }
  const summary = { turns } as LatencySummary;
  for (const f of LATENCY_FIELDS) summary[f] = stats(values[f]);
  return summary;
}

/**
 * The words of the call, from events whose data carries `text`: the agent's (`agent.*` events)
 * and the caller's (the rest). Core records only text lengths today, so this is empty until an
 * STT adapter reports transcripts.
 */
export function transcriptOf(events: readonly RecordedEvent[]): TranscriptEntry[] {
  const out: TranscriptEntry[] = [];
  for (const e of events) {
    const text = e.data?.text;
    if (typeof text !== 'string' || text.length === 0) continue;
    out.push({ role: e.type.startsWith('agent') ? 'agent' : 'user', text, at: e.at.toISOString() });
  }
  return out;
}
