import { Counter, Gauge, Histogram } from 'prom-client';
import { sharedFrameClock } from '../audio/index.ts';
import { registry } from '../observability/metrics.ts';
import type { WireProtocol } from '../wire/frames.ts';

const PROTOCOLS: WireProtocol[] = ['twilio', 'jambonz', 'telnyx', 'native'];

/**
 * Per-protocol counts the media path bumps per frame. Plain integers: a labelled prom-client
 * update per frame cost about a tenth of the core's CPU under load. Prometheus reads them at
 * scrape time through the `collect` hooks below.
 */
export interface ProtocolMetrics {
  sessions: number;
  framesIn: number;
  framesOut: number;
  droppedUnparsed: number;
  droppedBeforeStart: number;
  droppedSendFailed: number;
  backpressure: number;
  closedSlow: number;
  /** Messages over their socket's rate, dropped before parsing. */
  droppedRateLimited: number;
  /** Sockets closed for staying over their message rate. */
  closedRateLimited: number;
  /** Sockets closed because their session had not started by the start deadline. */
  closedStartTimeout: number;
  /** Upgrades refused because the client address had too many sockets not yet started. */
  refusedPending: number;
}

function zero(): ProtocolMetrics {
  return {
    sessions: 0,
    framesIn: 0,
    framesOut: 0,
    droppedUnparsed: 0,
    droppedBeforeStart: 0,
    droppedSendFailed: 0,
    backpressure: 0,
    closedSlow: 0,
    droppedRateLimited: 0,
    closedRateLimited: 0,
    closedStartTimeout: 0,
    refusedPending: 0,
  };
}

/** The realtime core's counts, per protocol. */
export const mediaMetrics: Record<WireProtocol, ProtocolMetrics> = Object.fromEntries(
  PROTOCOLS.map((p) => [p, zero()]),
) as Record<WireProtocol, ProtocolMetrics>;

type Series = { labels: Record<string, string>; read: () => number };

/** A Prometheus counter whose series report running totals we keep ourselves. */
function collectedCounter(name: string, help: string, labelNames: string[], series: Series[]): void {
  const reported = new Map<Series, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const s of series) {
        const total = s.read();
        this.inc(s.labels, Math.max(0, total - (reported.get(s) ?? 0)));
        reported.set(s, total);
      }
    },
  });
}

/** One series per protocol, reading one field. */
function perProtocol(read: (m: ProtocolMetrics) => number, extra: Record<string, string> = {}): Series[] {
  return PROTOCOLS.map((protocol) => ({
    labels: { protocol, ...extra },
    read: () => read(mediaMetrics[protocol]),
  }));
}

new Gauge({
  name: 'sipai_sessions_active',
  help: 'Live call sessions, by wire protocol.',
  labelNames: ['protocol'],
  registers: [registry],
  collect() {
    for (const protocol of PROTOCOLS) this.set({ protocol }, mediaMetrics[protocol].sessions);
  },
});
collectedCounter(
  'sipai_ws_frames_in_total',
  'WebSocket messages received and understood.',
  ['protocol'],
  perProtocol((m) => m.framesIn),
);
collectedCounter(
  'sipai_ws_frames_out_total',
  'WebSocket messages sent.',
  ['protocol'],
  perProtocol((m) => m.framesOut),
);
collectedCounter(
  'sipai_ws_frames_dropped_total',
  'WebSocket messages dropped: unparsed (garbage or unknown), before_start, send_failed, rate_limited.',
  ['protocol', 'reason'],
  [
    ...perProtocol((m) => m.droppedRateLimited, { reason: 'rate_limited' }),
    ...perProtocol((m) => m.droppedUnparsed, { reason: 'unparsed' }),
    ...perProtocol((m) => m.droppedBeforeStart, { reason: 'before_start' }),
    ...perProtocol((m) => m.droppedSendFailed, { reason: 'send_failed' }),
  ],
);
collectedCounter(
  'sipai_ws_backpressure_total',
  'Sends that found the socket buffer full (Bun ws.send returned -1).',
  ['protocol'],
  perProtocol((m) => m.backpressure),
);
collectedCounter(
  'sipai_ws_closed_slow_client_total',
  'Sockets closed because the client stopped reading.',
  ['protocol'],
  perProtocol((m) => m.closedSlow),
);
collectedCounter(
  'sipai_ws_closed_hostile_total',
  'Sockets closed by the flood guards: rate_limited (over their message rate), start_timeout (no session by the start deadline).',
  ['protocol', 'reason'],
  [
    ...perProtocol((m) => m.closedRateLimited, { reason: 'rate_limited' }),
    ...perProtocol((m) => m.closedStartTimeout, { reason: 'start_timeout' }),
  ],
);
collectedCounter(
  'sipai_ws_upgrades_refused_total',
  'Media WebSocket upgrades refused with 429: too many sockets from one address not yet started.',
  ['protocol'],
  perProtocol((m) => m.refusedPending),
);

/**
 * Time to handle one inbound WebSocket message (parse, decode, VAD, agent), in seconds. One
 * message in FRAME_SAMPLE_EVERY is timed: the distribution is the same, the cost a sixteenth.
 */
export const frameProcessingSeconds = new Histogram({
  name: 'sipai_ws_frame_processing_seconds',
  help: 'Time to handle one inbound WebSocket message (parse, decode, VAD, agent), sampled 1 in 16.',
  buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
  registers: [registry],
});
export const FRAME_SAMPLE_EVERY = 16;
collectedCounter(
  'sipai_frame_clock_timers_replaced_total',
  'Outbound-audio clock ticks that inbound traffic found more than 200 ms overdue and re-armed: a timer the runtime left unfired, or an event loop that far behind (core/audio/frame-clock.ts).',
  [],
  [{ labels: {}, read: () => sharedFrameClock().replacedTimers }],
);
