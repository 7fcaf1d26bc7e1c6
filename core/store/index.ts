export { connectStore } from './connect.ts';
export { keys } from './keys.ts';
export { MemoryStore } from './memory-store.ts';
export { RedisStore, type RedisStoreOptions } from './redis-store.ts';
export type {
  AcquireResult,
  ClaimOptions,
  LeaseClaim,
  ReadGroupOptions,
  Store,
  StoreHealth,
  StreamEntry,
  Unsubscribe,
} from './store.ts';
export { compareStreamIds } from './store.ts';
