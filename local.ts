/**
 * `npm start`: the whole platform in one process on one port, on embedded defaults — the
 * in-process MemoryStore and PGlite behind its socket — so it runs with no Redis, no Postgres
 * and no keys. REDIS_URL / DATABASE_URL switch either part to the real thing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Control } from './control/app.ts';
import { openDatabase } from './control/db/index.ts';
import { bootstrapAccountId, ensureDemoAgent } from './control/demo-agent.ts';
import { Core, isCorePath } from './core/app.ts';
import { ConfigError, loadConfig } from './core/config/index.ts';
import { createLogger } from './core/observability/index.ts';
import { onShutdownSignal, startHttpServer } from './core/server/index.ts';
import { connectStore } from './core/store/index.ts';
import { PROVIDER_WEBHOOKS, type TelephonyProvider } from './core/telephony/webhooks/paths.ts';

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
  if (!config.DATABASE_URL) {
    // PGlite takes seconds to create its data directory: say so before the wait, not after.
    const dir = config.PGLITE_DATA_DIR;
    const fresh = dir === 'memory://' || !existsSync(join(dir, 'PG_VERSION'));
    process.stdout.write(
      fresh
        ? `initialising the embedded database in ${dir}, first start takes a few seconds…\n`
        : `opening the embedded database in ${dir}…\n`,
    );
  }
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
  // Providers reach the public URL (PUBLIC_BASE_URL, e.g. a tunnel to this machine), which is
  // also the URL Twilio signs; unset, it defaults to localhost on PORT, and the server's own
  // URL (with the port PORT=0 picked) is the one to show.
  const publicUrlSet = config.PUBLIC_BASE_URL && config.PUBLIC_BASE_URL !== `http://localhost:${config.PORT}`;
  const hooksBase = publicUrlSet ? config.PUBLIC_BASE_URL : base;
  const hookUrl = (provider: TelephonyProvider, role: 'call' | 'status') =>
    `${hooksBase}${PROVIDER_WEBHOOKS.find((h) => h.provider === provider && h.role === role)?.path}`;
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
      '  phone numbers: point the provider at these webhooks (HTTP POST)',
      `    Twilio   voice ${hookUrl('twilio', 'call')}   status ${hookUrl('twilio', 'status')}`,
      `    Telnyx   voice ${hookUrl('telnyx', 'call')}   status ${hookUrl('telnyx', 'status')}`,
      `    Jambonz  call  ${hookUrl('jambonz', 'call')}   status ${hookUrl('jambonz', 'status')}`,
      ...(publicUrlSet
        ? []
        : ['    (providers need a public URL: set PUBLIC_BASE_URL to one that reaches this machine)']),
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
