import { describe, inject } from 'vitest';
import { runControlApiContract } from './control-api.contract.ts';
import { postgresAndRedis } from './support.ts';

const redisUrl = inject('redisUrl');
const postgresUrl = inject('postgresUrl');

describe.skipIf(!redisUrl || !postgresUrl)('control API on PostgreSQL and Redis', () => {
  runControlApiContract(() => postgresAndRedis(postgresUrl!, redisUrl!));
});
