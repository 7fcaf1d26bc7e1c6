import { randomUUID } from 'node:crypto';
import type { Store } from '../../store/store.ts';
import type { Provider } from './admission.ts';

/** Default memory of ended calls and handled deliveries: a day, past every provider's retries. */
export const DEFAULT_ENDED_CALL_TTL_MS = 24 * 60 * 60 * 1000;

/** The ids one call is known by: ours, and the provider's when it differs. */
export interface CallIds {
  callId: string;
  provider?: Provider;
  providerCallId?: string;
}

/** A delivery taken by {@link ReplayGuard.claim}; `undo` gives it back when handling it failed. */
export interface Claim {
  undo(): Promise<void>;
}

/** Store keys of the guard; they live `windowMs` and then vanish. */
const endedKey = (id: string) => `telephony:ended:${id}`;
const claimKey = (name: string) => `telephony:seen:${name}`;

/**
 * Why a replayed provider webhook cannot bring an ended call back: every ended call is remembered
 * (under our id and the provider's) for `windowMs`, so admission refuses it, and each delivery
 * with a stable identity (a status of a call, Twilio's `I-Twilio-Idempotency-Token`) can be
 * claimed once, so a retried or replayed one has no second effect. Claims are a one-slot lease
 * taken by a fresh holder: the Store's atomic acquire makes exactly one caller win, on every node.
 */
export class ReplayGuard {
  constructor(
    private readonly store: Store,
    readonly windowMs: number = DEFAULT_ENDED_CALL_TTL_MS,
  ) {
    if (!Number.isFinite(windowMs) || windowMs <= 0) {
      throw new RangeError(`windowMs must be a positive number of milliseconds, got ${windowMs}`);
    }
  }

  /** Remembers the call as ended under each of its ids. */
  async markEnded(ids: CallIds): Promise<void> {
    await Promise.all(endedKeys(ids).map((key) => this.store.set(key, '1', this.windowMs)));
  }

  /** Whether the call ended within the window, under any of its ids. */
  async hasEnded(ids: CallIds): Promise<boolean> {
    const values = await this.store.getMany(endedKeys(ids));
    return values.some((v) => v !== null);
  }

  /**
   * Takes the delivery named `name` if nobody has within the window: the claim, or null when it
   * was already taken (a retry, a replay, or a concurrent duplicate). `holder` names the taker:
   * the same holder claiming again gets its claim back (a retry of a half-done attempt).
   */
  async claim(name: string, holder: string = randomUUID()): Promise<Claim | null> {
    const key = claimKey(name);
    const taken = await this.store.acquire([{ key, limit: 1 }], holder, this.windowMs);
    if (!taken.ok) return null;
    return {
      undo: async () => {
        await this.store.release([key], holder);
      },
    };
  }
}

function endedKeys(ids: CallIds): string[] {
  const out = [endedKey(`call:${ids.callId}`)];
  if (ids.provider && ids.providerCallId && ids.providerCallId !== ids.callId) {
    out.push(endedKey(`${ids.provider}:${ids.providerCallId}`));
  }
  return out;
}
