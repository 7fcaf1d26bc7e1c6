import { Counter } from 'prom-client';
import { registry } from '../../core/observability/metrics.ts';

/**
 * Stream entries a worker gave up on and moved to the `dead_letters` table. Anything above zero
 * needs a person: the entries are kept there with the error that refused them.
 */
export const deadLettersTotal = new Counter({
  name: 'sipai_stream_dead_letters_total',
  help: 'Stream entries moved to the dead_letters table after Postgres refused them as data.',
  labelNames: ['stream', 'group'],
  registers: [registry],
});
