import type { Config } from '../config/index.ts';
import type { Logger } from '../observability/log.ts';
import { MemoryStore } from './memory-store.ts';
import { RedisStore } from './redis-store.ts';
import type { Store } from './store.ts';

/** The Store the configuration asks for: Redis when REDIS_URL is set, memory otherwise. */
export async function connectStore(config: Config, log: Logger): Promise<Store> {
  if (!config.REDIS_URL) {
    log.info({ store: 'memory' }, 'store ready');
    return new MemoryStore();
  }
  const store = await RedisStore.connect(config.REDIS_URL, { prefix: config.STORE_PREFIX });
  log.info({ store: 'redis' }, 'store ready');
  return store;
}
