import type { Store } from '../../../core/store/index.ts';

/**
 * The Store pub/sub channel on which every writer of `calls` rows (the recorder, `POST
 * /v1/calls`, the campaign runner, the orphan sweeper) names the calls it has just committed,
 * as a JSON array of ids. Each control node's open call streams (events.ts) read those rows
 * again, so a change made on one node reaches streams on every node (through Redis; within the
 * process with the MemoryStore).
 */
export const CALL_CHANGES_CHANNEL = 'calls:changed';

/**
 * Says that these calls' rows changed. Call it after the transaction commits, so a stream
 * reading them sees the change. Never throws: the change is on record whatever the Store says,
 * and a stream that missed the news catches up the next time the call changes, or when its
 * client reconnects and lists again.
 */
export async function callsChanged(store: Store, callIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(callIds)];
  if (ids.length === 0) return;
  try {
    await store.publish(CALL_CHANGES_CHANNEL, JSON.stringify(ids));
  } catch {
    // Best effort, as documented above.
  }
}
