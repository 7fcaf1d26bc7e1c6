import { randomUUID } from 'node:crypto';
import { describe, inject } from 'vitest';
import { RedisStore } from '../../../core/store/index.ts';
import { runStoreContract } from './store.contract.ts';

const redisUrl = inject('redisUrl');

describe.skipIf(!redisUrl)('against a real redis-server', () => {
  // A fresh key prefix per test keeps tests apart on the one shared server.
  runStoreContract('RedisStore', () => RedisStore.connect(redisUrl!, { prefix: `t:${randomUUID()}:` }));
});
