import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../observability/metrics.ts';
import type { WireProtocol } from '../wire/frames.ts';

const PROTOCOLS: WireProtocol[] = ['twilio', 'jambonz', 'telnyx', 'native'];

const sessions = new Gauge({
  name: 'sipai_sessions_active',
  help: 'Live call sessions, by wire protocol.',
  labelNames: ['protocol'],
  registers: [registry],
});
const framesIn = new Counter({
  name: 'sipai_ws_frames_in_total',
  help: 'WebSocket messages received and understood.',
  labelNames: ['protocol'],
  registers: [registry],
});
const framesOut = new Counter({
  name: 'sipai_ws_frames_out_total',
  help: 'WebSocket messages sent.',
  labelNames: ['protocol'],
  registers: [registry],
});
const dropped = new Counter({
  name: 'sipai_ws_frames_dropped_total',
  help: 'WebSocket messages dropped: unparsed (garbage or unknown), before_start, send_failed.',
  labelNames: ['protocol', 'reason'],
  registers: [registry],
});
const backpressure = new Counter({
  name: 'sipai_ws_backpressure_total',
  help: 'Sends that found the socket buffer full (Bun ws.send returned -1).',
  labelNames: ['protocol'],
  registers: [registry],
});
const closedSlow = new Counter({
  name: 'sipai_ws_closed_slow_client_total',
  help: 'Sockets closed because the client stopped reading.',
  labelNames: ['protocol'],
  registers: [registry],
});
const frameSeconds = new Histogram({
  name: 'sipai_ws_frame_processing_seconds',
  help: 'Time to handle one inbound WebSocket message (parse, decode, VAD, agent).',
  buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
  registers: [registry],
});

/** Counters bound to one protocol's labels, so the per-frame path does no label lookups. */
export interface ProtocolMetrics {
  sessions: ReturnType<Gauge['labels']>;
  framesIn: ReturnType<Counter['labels']>;
  framesOut: ReturnType<Counter['labels']>;
  droppedUnparsed: ReturnType<Counter['labels']>;
  droppedBeforeStart: ReturnType<Counter['labels']>;
  droppedSendFailed: ReturnType<Counter['labels']>;
  backpressure: ReturnType<Counter['labels']>;
  closedSlow: ReturnType<Counter['labels']>;
}

function bind(protocol: WireProtocol): ProtocolMetrics {
  return {
    sessions: sessions.labels(protocol),
    framesIn: framesIn.labels(protocol),
    framesOut: framesOut.labels(protocol),
    droppedUnparsed: dropped.labels(protocol, 'unparsed'),
    droppedBeforeStart: dropped.labels(protocol, 'before_start'),
    droppedSendFailed: dropped.labels(protocol, 'send_failed'),
    backpressure: backpressure.labels(protocol),
    closedSlow: closedSlow.labels(protocol),
  };
}

/** The realtime core's metrics, per protocol. */
export const mediaMetrics: Record<WireProtocol, ProtocolMetrics> = Object.fromEntries(
  PROTOCOLS.map((p) => [p, bind(p)]),
) as Record<WireProtocol, ProtocolMetrics>;

/** Per-message processing time, observed in seconds. */
export const frameProcessingSeconds = frameSeconds;
