import { describe, expect, it } from 'vitest';
import { isCorePath } from '../../core/app.ts';
import { alarmSpecs, SESSIONS_METRIC } from '../../infra/alarms.ts';
import { databaseUrl, redisUrl } from '../../infra/connection-urls.ts';
import { BLUE_GREEN, matchesPathPattern, PATH_RULES, routeOf } from '../../infra/routes.ts';
import {
  HARD_EXIT_MARGIN_MS,
  STOP_TIMEOUT_SECONDS,
  stageDomains,
  stageKind,
  stageSettings,
} from '../../infra/stage.ts';

describe('stageSettings', () => {
  it('names the kinds: production, staging, pr-<n>, and anything else as dev', () => {
    expect(stageKind('production')).toBe('production');
    expect(stageKind('staging')).toBe('staging');
    expect(stageKind('pr-123')).toBe('pr');
    expect(stageKind('dev')).toBe('dev');
    expect(stageKind('alice')).toBe('dev');
    expect(stageKind('pr-abc')).toBe('dev');
  });

  it('gives production managed NAT, an on-demand base, 30-day logs, retain and protect', () => {
    const s = stageSettings('production');
    expect(s).toMatchObject({ nat: 'managed', retentionDays: 30, removal: 'retain', protect: true });
    expect(s.capacity).toEqual({ fargate: { weight: 1, base: 2 }, spot: { weight: 1 } });
    expect(s.core.min).toBeGreaterThanOrEqual(2);
  });

  it.each(['staging', 'dev', 'pr-42', 'alice'])(
    'runs %s on Spot with EC2 NAT and removable, shorter-lived logs',
    (stage) => {
      const s = stageSettings(stage);
      expect(s).toMatchObject({
        nat: 'ec2',
        capacity: 'spot',
        removal: 'remove',
        protect: false,
        production: false,
      });
      expect(s.retentionDays).toBeLessThan(30);
    },
  );

  it('fits SHUTDOWN_GRACE_MS plus the hard-exit margin inside the Fargate stop timeout on every stage', () => {
    for (const stage of ['production', 'staging', 'dev', 'pr-1']) {
      const s = stageSettings(stage);
      expect(s.shutdownGraceMs + HARD_EXIT_MARGIN_MS).toBeLessThan(STOP_TIMEOUT_SECONDS * 1000);
      expect(s.drainSeconds * 1000).toBeGreaterThanOrEqual(s.shutdownGraceMs);
    }
  });

  it('refuses stage names AWS resource names cannot carry', () => {
    expect(() => stageSettings('Prod')).toThrow(/lower-case/);
    expect(() => stageSettings('pr_1')).toThrow(/lower-case/);
    expect(() => stageSettings('')).toThrow();
  });
});

describe('stageDomains', () => {
  it('puts production at the root and every other stage under its own name', () => {
    expect(stageDomains('production', 'voice.example.org')).toEqual({
      api: 'api.voice.example.org',
      hooks: 'hooks.voice.example.org',
    });
    expect(stageDomains('pr-7', 'Voice.Example.org.')).toEqual({
      api: 'api.pr-7.voice.example.org',
      hooks: 'hooks.pr-7.voice.example.org',
    });
  });

  it('names SIPAI_DOMAIN when it is missing or not a DNS name', () => {
    expect(() => stageDomains('staging', undefined)).toThrow(/SIPAI_DOMAIN is not set/);
    expect(() => stageDomains('staging', 'https://x.org')).toThrow(/SIPAI_DOMAIN must be a DNS name/);
  });
});

describe('ALB routing table', () => {
  it('matches ALB path patterns: * any run, ? one character, case-sensitive', () => {
    expect(matchesPathPattern('/realtime/*', '/realtime/voice')).toBe(true);
    expect(matchesPathPattern('/realtime/*', '/realtime')).toBe(false);
    expect(matchesPathPattern('/v1/?', '/v1/a')).toBe(true);
    expect(matchesPathPattern('/V1/*', '/v1/a')).toBe(false);
  });

  it('agrees with core/app.ts on every public path: core paths to core, the rest to control', () => {
    const paths = [
      '/v1/realtime/voice',
      '/realtime/voice',
      '/telephony/twilio/stream',
      '/telephony/jambonz/call',
      '/telephony/telnyx/events',
      '/v1/realtime/tokens',
      '/v1/agents',
      '/v1/health',
      '/v1/docs',
    ];
    for (const p of paths) expect(routeOf(p), p).toBe(isCorePath(p) ? 'core' : 'control');
  });

  it('sends /v1/realtime/* and /realtime/* to core but keeps token minting and /webhooks/* on control', () => {
    expect(routeOf('/v1/realtime/voice')).toBe('core');
    expect(routeOf('/v1/realtime/anything')).toBe('core');
    expect(routeOf('/v1/realtime/tokens')).toBe('control');
    expect(routeOf('/webhooks/inbound/abc')).toBe('control');
    expect(routeOf('/webhooks')).toBeUndefined();
  });

  it('fits each rule in one ALB listener rule (at most five path values) with distinct priorities', () => {
    for (const r of PATH_RULES) expect(r.paths.length).toBeLessThanOrEqual(5);
    expect(new Set(PATH_RULES.map((r) => r.priority)).size).toBe(PATH_RULES.length);
  });

  it('rolls production back only on alarms the stage has', () => {
    const keys = new Set(alarmSpecs(stageSettings('production')).map((a) => a.key));
    for (const names of Object.values(BLUE_GREEN.rollbackAlarms))
      for (const key of names) expect(keys.has(key), key).toBe(true);
  });

  it('keeps /health and /metrics off the public listener', () => {
    expect(routeOf('/metrics')).toBeUndefined();
    expect(routeOf('/health')).toBeUndefined();
  });
});

describe('connection URLs', () => {
  it('builds rediss:// with the auth token percent-encoded, and ioredis-style parsing gets it back', () => {
    const url = redisUrl({
      host: 'master.x.cache.amazonaws.com',
      port: 6379,
      username: 'default',
      password: 'a#b&c<d>e$f',
      tls: true,
    });
    expect(url).toBe('rediss://default:a%23b%26c%3Cd%3Ee%24f@master.x.cache.amazonaws.com:6379');
    expect(decodeURIComponent(new URL(url).password)).toBe('a#b&c<d>e$f');
    expect(redisUrl({ host: 'h', port: 1, username: 'default', password: '', tls: false })).toBe(
      'redis://h:1',
    );
  });

  it('builds a postgres:// URL that asks for TLS', () => {
    const url = new URL(
      databaseUrl({
        host: 'db.rds.amazonaws.com',
        port: 5432,
        username: 'postgres',
        password: 'p/w@',
        database: 'sipai',
      }),
    );
    expect(url.protocol).toBe('postgres:');
    expect(decodeURIComponent(url.password)).toBe('p/w@');
    expect(url.pathname).toBe('/sipai');
    expect(url.searchParams.get('sslmode')).toBe('require');
  });
});

describe('alarmSpecs', () => {
  it('fires the calls alarm below the global limit, on the metric core scales by', () => {
    const s = stageSettings('production');
    const calls = alarmSpecs(s).find((a) => a.key === 'calls-near-limit');
    expect(calls).toMatchObject({ metricName: SESSIONS_METRIC.name, namespace: SESSIONS_METRIC.namespace });
    expect(calls?.threshold).toBeLessThan(s.globalMaxConcurrency);
    expect(calls?.threshold).toBeGreaterThan(s.globalMaxConcurrency / 2);
  });

  it('has one alarm per key', () => {
    const keys = alarmSpecs(stageSettings('staging')).map((a) => a.key);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
