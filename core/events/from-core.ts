import { createHash } from 'node:crypto';
import type { EventType } from './catalogue.ts';

/**
 * Core's timeline steps (core/session/timeline.ts, core/telephony/webhooks/admission.ts) as
 * public events of the catalogue. Internal names stay free to change; this table is the
 * contract. A step with no public counterpart (marks, barge-in, provider progress) maps to null.
 */

/** One step of a call as the recorder parsed it: enough to name and identify the public event. */
export interface CoreStep {
  type: string;
  callId: string;
  at: Date;
  data: Record<string, unknown> | null;
  /** The recorder's content fingerprint: the same step read twice has the same one. */
  fingerprint: string;
}

/** A public event before control knows its account: the outbox adds that from the call's row. */
export interface MappedEvent {
  id: string;
  type: EventType;
  callId: string;
  at: Date;
  data: Record<string, unknown>;
}

/** Lines of transcript `call.ended` carries at most (the last ones). */
export const TRANSCRIPT_MAX_LINES = 100;

/** Provider statuses that end a call nobody answered. */
const UNANSWERED = new Set(['busy', 'no-answer', 'failed', 'canceled']);

/**
 * The id of the public event made from `step`: derived from the call and the step's
 * fingerprint, so the same step recorded twice (a retried batch, a call's own stream read after
 * the global one) is the same event and is delivered once per endpoint.
 */
export function eventIdOf(callId: string, fingerprint: string, type: EventType): string {
  const digest = createHash('sha256').update(`${callId}\n${fingerprint}\n${type}`).digest('hex').slice(0, 32);
  return `evt_${digest}`;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function direction(value: unknown): 'inbound' | 'outbound' | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.startsWith('outbound')) return 'outbound';
  if (value.startsWith('inbound')) return 'inbound';
  return undefined;
}

/** Drops undefined values, so the JSON carries only what is known. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * The caller's and the agent's lines of a call, in order, from its steps (the last
 * {@link TRANSCRIPT_MAX_LINES}).
 */
export function transcriptOf(steps: readonly CoreStep[]): { role: 'caller' | 'agent'; text: string }[] {
  const lines: { role: 'caller' | 'agent'; text: string }[] = [];
  for (const s of steps) {
    const text = str(s.data?.text);
    if (!text) continue;
    if (s.type === 'transcript.final') lines.push({ role: 'caller', text });
    else if (s.type === 'agent.said') lines.push({ role: 'agent', text });
  }
  return lines.slice(-TRANSCRIPT_MAX_LINES);
}

/**
 * The public event of one core step, or null when it has none. `callSteps` is the call's whole
 * timeline when known (at `call.ended`), for the transcript.
 */
export function publicEventOf(step: CoreStep, callSteps: readonly CoreStep[] = []): MappedEvent | null {
  const d = step.data ?? {};
  const make = (type: EventType, data: Record<string, unknown>): MappedEvent => ({
    id: eventIdOf(step.callId, step.fingerprint, type),
    type,
    callId: step.callId,
    at: step.at,
    data: defined(data),
  });
  switch (step.type) {
    case 'call.admitted':
      return make('call.started', {
        direction: direction(d.direction),
        from: str(d.from),
        to: str(d.to),
        campaignId: str(d.campaignId),
      });
    case 'call.started':
      return make('call.answered', {
        direction: direction(d.direction),
        protocol: str(d.protocol),
        brain: str(d.brain),
      });
    case 'call.ended':
      return make('call.ended', {
        reason: str(d.reason) ?? 'unknown',
        durationMs: num(d.durationMs) === undefined ? undefined : Math.max(0, Math.round(num(d.durationMs)!)),
        turns: num(d.turns),
        transcript: transcriptOf(callSteps),
      });
    case 'call.refused':
      // `ended`: a replayed webhook of a call that already ended, not a failure.
      if (str(d.reason) === 'ended') return null;
      return make('call.failed', { reason: str(d.reason) ?? 'refused', from: str(d.from), to: str(d.to) });
    case 'call.status': {
      const status = str(d.status);
      if (!status || !UNANSWERED.has(status)) return null;
      return make('call.failed', { reason: status, from: str(d.from), to: str(d.to) });
    }
    case 'transcript.final':
      return str(d.text) ? make('transcript.final', { text: d.text }) : null;
    case 'transcript.partial':
      return str(d.text) ? make('transcript.partial', { text: d.text }) : null;
    case 'agent.said':
      return str(d.text)
        ? make('agent.reply', { text: d.text, interrupted: d.interrupted, playedMs: num(d.playedMs) })
        : null;
    case 'tool.called':
    case 'tool.result':
      return str(d.name) ? make(step.type, { ...d }) : null;
    case 'call.transferring':
      return str(d.to) ? make('call.transferred', { to: d.to }) : null;
    case 'turn.latency':
      return make('turn.latency', { ...d });
    default:
      return null;
  }
}
