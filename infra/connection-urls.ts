/**
 * Connection URLs the services read (REDIS_URL, DATABASE_URL), built from what the Redis and
 * Postgres components report. Credentials are percent-encoded: ElastiCache auth tokens contain
 * characters such as `#`, `&` and `<` that would otherwise end the userinfo part of the URL
 * (ioredis and the `postgres` driver both decode them again).
 */

export interface RedisEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
  /** In-transit encryption on: `rediss://` (ioredis then speaks TLS). */
  tls: boolean;
}

export function redisUrl(r: RedisEndpoint): string {
  const scheme = r.tls ? 'rediss' : 'redis';
  const auth = r.password ? `${encodeURIComponent(r.username)}:${encodeURIComponent(r.password)}@` : '';
  return `${scheme}://${auth}${r.host}:${r.port}`;
}

export interface PostgresEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
}

/** `sslmode=require`: RDS offers TLS and the `postgres` driver takes the mode from the URL. */
export function databaseUrl(p: PostgresEndpoint): string {
  const user = encodeURIComponent(p.username);
  const password = encodeURIComponent(p.password);
  return `postgres://${user}:${password}@${p.host}:${p.port}/${encodeURIComponent(p.database)}?sslmode=require`;
}
