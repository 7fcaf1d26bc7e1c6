import type { Control } from '../../control/app.ts';
import { type RunningHttpServer, startHttpServer } from '../../core/server/index.ts';
import { type Backing, makeAccount, makeControl } from './support.ts';

/** A clock the test moves by hand. */
export interface ManualClock {
  now: number;
  read: () => number;
}

export function manualClock(start = Date.now()): ManualClock {
  const clock: ManualClock = { now: start, read: () => clock.now };
  return clock;
}

/** Control alone on a real socket, handing the server to `fetch` as the entry points should. */
export interface GuardedServer {
  control: Control;
  http: RunningHttpServer;
  url: string;
  /** An admin key of a fresh account. */
  key: string;
  close(): Promise<void>;
}

export async function startGuardedServer(backing: Backing, clock?: ManualClock): Promise<GuardedServer> {
  // A provider configured (nothing is dialled: no campaign is started), so campaigns can be created.
  const env = {
    API_RATE_LIMIT_PER_MIN: '1000000',
    JAMBONZ_API_BASE_URL: 'http://127.0.0.1:9',
    JAMBONZ_ACCOUNT_SID: 'guarded-account-sid',
    JAMBONZ_API_KEY: 'guarded-api-key',
  };
  const control = makeControl(backing, env, backing.store, {
    workers: { recorder: false, campaigns: false },
    ...(clock ? { now: clock.read } : {}),
  });
  await control.start();
  const { key } = await makeAccount(control, 'guarded');
  const http = startHttpServer({
    port: 0,
    hostname: '127.0.0.1',
    log: control.state.log,
    plane: { fetch: (req, server) => control.fetch(req, server) },
  });
  return {
    control,
    http,
    url: http.url,
    key,
    async close() {
      await http.stop(1000);
      await control.close();
    },
  };
}
