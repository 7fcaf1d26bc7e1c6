/**
 * A webhook dispatcher alone in its own process, for tests that kill it with SIGKILL mid-work:
 * connects to DATABASE_URL, runs with the policy in DISPATCHER_POLICY (JSON), prints `ready`.
 */
import { connectDatabase } from '../../control/db/index.ts';
import { Dispatcher, type DispatcherOptions } from '../../control/workers/dispatcher.ts';
import { createLogger } from '../../core/observability/index.ts';

const sql = connectDatabase(process.env.DATABASE_URL!, 4);
const { policy, options } = JSON.parse(process.env.DISPATCHER_POLICY!) as {
  policy: ConstructorParameters<typeof Dispatcher>[1];
  options: DispatcherOptions;
};
const dispatcher = new Dispatcher(
  { sql, log: createLogger({ level: 'silent', service: 'dispatcher' }) },
  policy,
  options,
);
dispatcher.start();
process.stdout.write('ready\n');
