import type { TestProject } from 'vitest/node';
import { postgresBinaries, type RunningService, redisBinary, startPostgres, startRedis } from './services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `redis://…` of the private redis-server, or null when the binary is absent (local runs only). */
    redisUrl: string | null;
    /** `postgres://…` of the private PostgreSQL, or null when its binaries are absent (local runs only). */
    postgresUrl: string | null;
  }
}

/**
 * Starts one private redis-server and one PostgreSQL for the whole run. Missing binaries skip
 * the suites that need them with one loud line, except under CI=true, where they fail the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const started: RunningService[] = [];
  const missing: string[] = [];

  const redisBin = redisBinary();
  if (redisBin) {
    const redis = await startRedis(redisBin);
    started.push(redis);
    project.provide('redisUrl', redis.url);
  } else {
    missing.push('redis-server');
    project.provide('redisUrl', null);
  }

  const pgBins = postgresBinaries();
  if (pgBins) {
    const pg = await startPostgres(pgBins);
    started.push(pg);
    project.provide('postgresUrl', pg.url);
  } else {
    missing.push('PostgreSQL (initdb, pg_ctl)');
    project.provide('postgresUrl', null);
  }

  if (missing.length > 0) {
    const line = `!!! ${missing.join(' and ')} not installed: the suites that need them are SKIPPED. Install: apt-get install -y redis-server postgresql`;
    if (ci) {
      await Promise.all(started.map((s) => s.stop()));
      throw new Error(`CI=true and ${line}`);
    }
    console.warn(`\n${line}\n`);
  }

  return async () => {
    await Promise.all(started.map((s) => s.stop()));
  };
}
