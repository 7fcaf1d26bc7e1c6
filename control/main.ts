/**
 * Control alone, as production runs it (Fargate, port 8080): the `/v1` API over DATABASE_URL,
 * its workers, the Store from REDIS_URL, and `/metrics`.
 */
import { ConfigError, loadConfig } from '../core/config/index.ts';
import { createLogger, metricsResponse } from '../core/observability/index.ts';
import { metricsAuthorized, metricsUnauthorized } from '../core/observability/metrics-auth.ts';
import { onShutdownSignal, startHttpServer } from '../core/server/index.ts';
import { connectStore } from '../core/store/index.ts';
import { Control } from './app.ts';
import { openDatabase } from './db/index.ts';

try {
  const config = await loadConfig(process.env, { defaults: { PORT: '8080' } });
  const log = createLogger({ level: config.LOG_LEVEL, service: 'control' });
  const store = await connectStore(config, log);
  const db = await openDatabase(config, log);
  const control = new Control({ config, log, store, sql: db.sql, databaseKind: db.kind });
  const http = startHttpServer({
    port: config.PORT,
    hostname: config.HOST,
    log,
    plane: {
      fetch: (req, server) => {
        if (new URL(req.url).pathname !== '/metrics') return control.fetch(req, server);
        return metricsAuthorized(req, config.METRICS_API_KEY) ? metricsResponse() : metricsUnauthorized();
      },
    },
  });
  log.info({ url: http.url, health: `${http.url}/v1/health` }, 'control listening');
  onShutdownSignal(log, config.SHUTDOWN_GRACE_MS + 5000, async () => {
    await http.stop(config.SHUTDOWN_GRACE_MS);
    await control.close();
    await db.close();
    await store.close();
  });
  const { bootstrap } = await control.start();
  if (bootstrap?.secret) {
    // Straight to stdout, never through the logger: the one time this key is shown.
    process.stdout.write(
      `\nAdmin API key for account ${bootstrap.accountId} (shown once, store it now):\n  ${bootstrap.secret}\n\n`,
    );
  }
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
