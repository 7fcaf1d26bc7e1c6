/**
 * Core alone, as production runs it (Fargate, port 8081): the Store from REDIS_URL, the
 * realtime and telephony endpoints, drain on SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { Core } from './app.ts';
import { ConfigError, loadConfig } from './config/index.ts';
import { createLogger } from './observability/index.ts';
import { onShutdownSignal, startHttpServer } from './server/index.ts';
import { connectStore } from './store/index.ts';

try {
  const generatedSecret = process.env.REALTIME_WS_SECRET ? undefined : randomBytes(24).toString('base64url');
  const env = generatedSecret ? { ...process.env, REALTIME_WS_SECRET: generatedSecret } : process.env;
  const config = await loadConfig(env, { defaults: { PORT: '8081' } });
  const log = createLogger({ level: config.LOG_LEVEL, service: 'core' });
  if (generatedSecret) {
    log.warn(
      {},
      'REALTIME_WS_SECRET unset: using a random one, so tokens minted by control will not verify here',
    );
  }
  if (!config.REDIS_URL)
    log.warn({}, 'REDIS_URL unset: in-process MemoryStore, this node cannot share calls or leases');
  const store = await connectStore(config, log);
  const core = new Core({ config, store, log });
  const http = startHttpServer({ port: config.PORT, hostname: config.HOST, plane: core, log });
  log.info({ url: http.url, health: `${http.url}/health` }, 'core listening');
  onShutdownSignal(log, config.SHUTDOWN_GRACE_MS + 5000, async () => {
    await Promise.all([core.drain(config.SHUTDOWN_GRACE_MS), http.stop(config.SHUTDOWN_GRACE_MS)]);
    await store.close();
  });
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
