import { Histogram } from 'prom-client';
import { registry } from '../observability/metrics.ts';

/**
 * Per-turn latency by stage and provider, in seconds: `endpointing` (silence waited), `stt`
 * (recogniser final), `llm` (brain to its first words), `tts` (voice to its first audio) and
 * `turn` (end of the caller's speech to the first agent audio frame sent). The same figures
 * as each call's `turn.latency` timeline step, aggregated for dashboards and alarms.
 */
export const turnStageSeconds = new Histogram({
  name: 'sipai_turn_stage_seconds',
  help: 'Latency of each stage of a conversational turn, by provider.',
  labelNames: ['stage', 'provider'] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
  registers: [registry],
});
