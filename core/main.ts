/**
 * Core alone, as production runs it (Fargate, port 8081): the Store from REDIS_URL, the
 * realtime and telephony endpoints, drain on SIGTERM.
 */
import { warmOfflineProviders } from './agent/default-registry.ts';
import { Core } from './app.ts';
import { ConfigError, loadConfig } from './config/index.ts';
import { startEmfEmitter } from './observability/cloudwatch-emf.ts';
import { createLogger } from './observability/index.ts';
import { onShutdownSignal, startHttpServer } from './server/index.ts';
import { connectStore } from './store/index.ts';

try {
  const config = await loadConfig(process.env, { defaults: { PORT: '8081' } });
  // Tokens minted by control (and by other core nodes) verify only with the shared secret: a
  // node that made up its own would refuse every stream, so it does not boot without one.
  if (!config.REALTIME_WS_SECRET) {
    throw new ConfigError([
      {
        name: 'REALTIME_WS_SECRET',
        reason: 'is required by core: the secret control and every core node share',
      },
    ]);
  }
  const log = createLogger({ level: config.LOG_LEVEL, service: 'core' });
  if (!config.REDIS_URL)
    log.warn({}, 'REDIS_URL unset: in-process MemoryStore, this node cannot share calls or leases');
  const store = await connectStore(config, log);
  warmOfflineProviders();
  const core = new Core({ config, store, log });
  const http = startHttpServer({ port: config.PORT, hostname: config.HOST, plane: core, log });
  log.info({ url: http.url, health: `${http.url}/health` }, 'core listening');
  // On ECS (SIPAI_STAGE set by sst.config.ts): live sessions and capacity refusals to CloudWatch.
  const stage = process.env.SIPAI_STAGE?.trim();
  const emf = stage
    ? startEmfEmitter({ stage, intervalMs: Number(process.env.SIPAI_EMF_INTERVAL_MS) || undefined })
    : undefined;
  onShutdownSignal(log, config.SHUTDOWN_GRACE_MS + 5000, async () => {
    emf?.stop();
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
