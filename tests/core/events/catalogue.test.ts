import { readFileSync } from 'node:fs';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import {
  EVENT_TYPE_NAMES,
  EVENT_TYPES,
  type EventDefinition,
  envelopeSchema,
  isEventType,
  openApiWebhooks,
  wants,
} from '../../../core/events/catalogue.ts';
import {
  type CoreStep,
  eventIdOf,
  publicEventOf,
  TRANSCRIPT_MAX_LINES,
} from '../../../core/events/from-core.ts';

if (!FormatRegistry.Has('date-time'))
  FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v)));

const at = new Date('2026-03-01T10:00:00.000Z');
const step = (type: string, data: Record<string, unknown> | null, fingerprint = `fp-${type}`): CoreStep => ({
  type,
  callId: 'cal_1',
  at,
  data,
  fingerprint,
});

/** Every mapped event must validate against its own catalogue schema, envelope included. */
function expectValid(event: ReturnType<typeof publicEventOf>) {
  expect(event).not.toBeNull();
  const def = EVENT_TYPES[event!.type] as EventDefinition;
  const envelope = {
    id: event!.id,
    type: event!.type,
    version: 1,
    accountId: 'acc_1',
    callId: event!.callId,
    at: event!.at.toISOString(),
    data: event!.data,
  };
  const errors = [...Value.Errors(envelopeSchema(event!.type, def.data), envelope)].map(
    (e) => `${e.path} ${e.message}`,
  );
  expect(errors).toEqual([]);
}

describe('event catalogue', () => {
  it('names every event the issue lists, each with a description and a data schema', () => {
    for (const name of [
      'call.started',
      'call.answered',
      'call.ended',
      'call.failed',
      'transcript.final',
      'transcript.partial',
      'agent.reply',
      'tool.called',
      'tool.result',
      'call.transferred',
      'turn.latency',
      'agent.created',
      'agent.updated',
      'agent.deleted',
      'campaign.completed',
    ]) {
      expect(isEventType(name), name).toBe(true);
      const def = EVENT_TYPES[name as keyof typeof EVENT_TYPES] as EventDefinition;
      expect(def.description.length).toBeGreaterThan(10);
      expect(def.data.type).toBe('object');
    }
    expect(isEventType('call.admitted')).toBe(false);
    expect(isEventType('toString')).toBe(false);
  });

  it('sends opt-in events only to endpoints that list them', () => {
    expect(wants([], 'call.ended')).toBe(true);
    expect(wants([], 'transcript.partial')).toBe(false);
    expect(wants(['transcript.partial'], 'transcript.partial')).toBe(true);
    expect(wants(['call.ended'], 'call.started')).toBe(false);
  });

  it('maps core steps to public events that validate against the catalogue', () => {
    expectValid(publicEventOf(step('call.admitted', { direction: 'outbound-api', from: '+1', to: '+2' })));
    expectValid(
      publicEventOf(step('call.started', { protocol: 'twilio', direction: 'inbound', brain: 'llm' })),
    );
    expectValid(publicEventOf(step('call.refused', { reason: 'at_capacity', from: '+1', to: '+2' })));
    expectValid(publicEventOf(step('call.status', { status: 'busy' })));
    expectValid(publicEventOf(step('transcript.final', { text: 'hello' })));
    expectValid(publicEventOf(step('transcript.partial', { text: 'hel' })));
    expectValid(publicEventOf(step('agent.said', { text: 'hi there', interrupted: false, playedMs: 900 })));
    expectValid(publicEventOf(step('tool.called', { name: 'lookup', id: 't1', arguments: '{}' })));
    expectValid(publicEventOf(step('tool.result', { name: 'lookup', id: 't1', ok: true, result: 'x' })));
    expectValid(publicEventOf(step('call.transferring', { to: '+3' })));
    expectValid(publicEventOf(step('turn.latency', { turn: 1, endpointingMs: 300, sttMs: 80 })));
    expect(publicEventOf(step('call.admitted', {}))!.type).toBe('call.started');
    expect(publicEventOf(step('call.started', {}))!.type).toBe('call.answered');
    expect(publicEventOf(step('call.refused', { reason: 'no_route' }))!.data.reason).toBe('no_route');
    // Not public: internal steps, provider progress, a replayed webhook of an ended call.
    expect(publicEventOf(step('mark', { name: 'm1' }))).toBeNull();
    expect(publicEventOf(step('barge_in', {}))).toBeNull();
    expect(publicEventOf(step('call.status', { status: 'ringing' }))).toBeNull();
    expect(publicEventOf(step('call.refused', { reason: 'ended' }))).toBeNull();
  });

  it('puts the transcript, caller and agent in order, on call.ended', () => {
    const steps = [
      step('transcript.final', { text: 'I need a table' }, 'a'),
      step('agent.said', { text: 'For how many?' }, 'b'),
      step('transcript.partial', { text: 'fo' }, 'c'),
      step('transcript.final', { text: 'four' }, 'd'),
    ];
    const ended = publicEventOf(
      step('call.ended', { reason: 'hangup', durationMs: 5000.4, turns: 2 }),
      steps,
    );
    expectValid(ended);
    expect(ended!.data).toEqual({
      reason: 'hangup',
      durationMs: 5000,
      turns: 2,
      transcript: [
        { role: 'caller', text: 'I need a table' },
        { role: 'agent', text: 'For how many?' },
        { role: 'caller', text: 'four' },
      ],
    });
    const long = Array.from({ length: 150 }, (_, i) =>
      step('transcript.final', { text: `line ${i}` }, `f${i}`),
    );
    const capped = publicEventOf(step('call.ended', { reason: 'hangup' }), long)!.data
      .transcript as unknown[];
    expect(capped).toHaveLength(TRANSCRIPT_MAX_LINES);
    expect(capped.at(-1)).toEqual({ role: 'caller', text: 'line 149' });
  });

  it('derives event ids from content: the same step is the same event', () => {
    const a = publicEventOf(step('transcript.final', { text: 'x' }, 'same'));
    const b = publicEventOf(step('transcript.final', { text: 'x' }, 'same'));
    const c = publicEventOf(step('transcript.final', { text: 'x' }, 'other'));
    expect(a!.id).toBe(b!.id);
    expect(a!.id).not.toBe(c!.id);
    expect(a!.id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(eventIdOf('cal_1', 'same', 'transcript.final')).toBe(a!.id);
  });

  it('describes every event as an OpenAPI webhook', () => {
    const doc = openApiWebhooks() as Record<
      string,
      {
        post: {
          requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
        };
      }
    >;
    expect(Object.keys(doc)).toEqual(EVENT_TYPE_NAMES);
    const ended = doc['call.ended']!.post.requestBody.content['application/json']!.schema;
    expect(Object.keys(ended.properties)).toEqual([
      'id',
      'type',
      'version',
      'accountId',
      'callId',
      'at',
      'data',
    ]);
    expect(JSON.stringify(doc)).not.toContain('Symbol');
  });

  it('is documented in docs/events.md, every type in the catalogue table', () => {
    const doc = readFileSync(new URL('../../../docs/events.md', import.meta.url), 'utf8');
    for (const name of EVENT_TYPE_NAMES) expect(doc, name).toContain(`| \`${name}\` |`);
  });
});
