import type { Store } from '../core/store/index.ts';
import { ApiError } from './errors.ts';

/**
 * Writes that core must see go through here: a Store failure becomes a 503 the caller can
 * retry, thrown inside the database transaction so the row change rolls back with it.
 */
export async function mirror(op: () => Promise<unknown>): Promise<void> {
  try {
    await op();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(
      503,
      'store_unavailable',
      'the Store did not accept the change; nothing was saved, retry',
    );
  }
}

/** Writes `value` as JSON at `key`. */
export function mirrorJson(store: Store, key: string, value: unknown): Promise<void> {
  return mirror(() => store.set(key, JSON.stringify(value)));
}

/** True when `err` is a Postgres error with this SQLSTATE (`23505` unique, `23503` foreign key). */
export function isPgError(err: unknown, sqlState: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === sqlState;
}
