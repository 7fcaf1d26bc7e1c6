import { describe, inject } from 'vitest';
import { runCallsContract } from './calls.contract.ts';
import { postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

describe.skipIf(!redisUrl || !postgresUrl)('calls and campaigns on PostgreSQL and Redis', () => {
  runCallsContract(() => postgresAndRedis(postgresUrl!, redisUrl!));
});
