/**
 * `npm start`: the whole platform in one process on one port, on embedded defaults — the
 * in-process MemoryStore and PGlite behind its socket — so it runs with no Redis, no Postgres
 * and no keys. REDIS_URL / DATABASE_URL switch either part to the real thing.
 */
import { randomBytes } from 'node:crypto';
import { Control } from './control/app.ts';
import { openDatabase } from './control/db/index.ts';
import { bootstrapAccountId, ensureDemoAgent } from './control/demo-agent.ts';
import { Core, isCorePath } from './core/app.ts';
import { ConfigError, loadConfig } from './core/config/index.ts';
import { createLogger } from './core/observability/index.ts';
import { onShutdownSignal, startHttpServer } from './core/server/index.ts';
import { connectStore } from './core/store/index.ts';

try {
  // Tokens for media sockets need a secret; a laptop gets a fresh random one per process.
  const env = {
    ...process.env,
    REALTIME_WS_SECRET: process.env.REALTIME_WS_SECRET || randomBytes(24).toString('base64url'),
  };
  // Webhook receivers on this machine (localhost, a LAN box) work out of the box here.
  const config = await loadConfig(env, { defaults: { PORT: '3000', WEBHOOK_ALLOW_PRIVATE_URLS: 'true' } });
  const log = createLogger({ level: config.LOG_LEVEL, service: 'local' });
  const store = await connectStore(config, log);
  const db = await openDatabase(config, log);
  const core = new Core({ config, store, log: log.child({ plane: 'core' }) });
  const control = new Control({
    config,
    store,
    sql: db.sql,
    databaseKind: db.kind,
    log: log.child({ plane: 'control' }),
  });
  const http = startHttpServer({
    port: config.PORT,
    hostname: config.HOST,
    log,
    plane: {
      fetch: (req, server) =>
        isCorePath(new URL(req.url).pathname) ? core.fetch(req, server) : control.fetch(req, server),
      websocket: core.websocket,
    },
  });
  onShutdownSignal(log, config.SHUTDOWN_GRACE_MS + 5000, async () => {
    await Promise.all([core.drain(config.SHUTDOWN_GRACE_MS), http.stop(config.SHUTDOWN_GRACE_MS)]);
    await control.close();
    await db.close();
    await store.close();
  });
  const { bootstrap } = await control.start();
  // Unless DEFAULT_AGENT_ID chose one, the seeded demo agent answers what nothing routes.
  let demo: { id: string; warnings: string[] } | null = null;
  if (!config.DEFAULT_AGENT_ID) {
    const accountId = bootstrap?.accountId ?? (await bootstrapAccountId(db.sql));
    if (accountId) {
      const id = await ensureDemoAgent(control.services.agents, accountId);
      core.setDefaultAgentId(id);
      demo = { id, warnings: (await control.services.agents.get(accountId, id)).warnings };
    }
  }
  const base = http.url;
  const ws = base.replace(/^http/, 'ws');
  process.stdout.write(
    [
      '',
      `sipai is up on ${base}  (store: ${store.kind}, database: ${db.kind})`,
      `  core health     ${base}/health`,
      `  control health  ${base}/v1/health`,
      `  metrics         ${base}/metrics`,
      `  realtime voice  ${ws}/realtime/voice   (native protocol: docs/realtime-protocol.md)`,
      `  provider media  ${ws}/telephony/{twilio,jambonz,telnyx}/stream`,
      `  API docs        ${base}/v1/swagger`,
      ...(demo
        ? [
            `  demo agent      ${demo.id}  (answers unrouted calls and /realtime/voice)`,
            // What this machine lacks to run it, e.g. a Debian package to install.
            ...demo.warnings.map((w) => `    not ready: ${w}`),
          ]
        : []),
      ...(bootstrap?.secret
        ? [
            '',
            `Admin API key for account ${bootstrap.accountId} (shown once, store it now):`,
            `  ${bootstrap.secret}`,
          ]
        : []),
      '',
      '',
    ].join('\n'),
  );
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
