import type { CallCapacity } from './call-capacity.ts';

export interface KeepAliveOptions {
  /** The call lost its slots (released elsewhere, or lapsed): the session should end it. */
  onLost?: (callId: string) => void;
  /** A renewal failed for a reason other than loss (Store outage); it is retried next tick. */
  onError?: (err: unknown, callId: string) => void;
  /** Default: a third of the capacity's TTL, so two renewals can fail before the slots lapse. */
  intervalMs?: number;
}

/** A running renewal loop; `stop()` is idempotent and returns once no renewal is in flight. */
export interface LeaseKeeper {
  readonly callId: string;
  stop(): Promise<void>;
}

/**
 * Keeps a live call's slots from lapsing: renews them every TTL/3 on whichever node owns the
 * call until stopped. Lapsing is the safety net for crashed nodes, not how calls normally end,
 * so the call's one `close()` path stops the keeper and then releases.
 */
export function keepLeasesAlive(
  capacity: CallCapacity,
  callId: string,
  opts: KeepAliveOptions = {},
): LeaseKeeper {
  const intervalMs = opts.intervalMs ?? Math.max(1, Math.floor(capacity.limits.ttlMs / 3));
  let stopped = false;
  let inFlight: Promise<void> | undefined;

  const tick = () => {
    if (stopped || inFlight) return;
    inFlight = capacity
      .renew(callId)
      .then((held) => {
        if (!held && !stopped) {
          stopped = true;
          clearInterval(timer);
          opts.onLost?.(callId);
        }
      })
      .catch((err: unknown) => {
        if (!stopped) opts.onError?.(err, callId);
      })
      .finally(() => {
        inFlight = undefined;
      });
  };

  const timer = setInterval(tick, intervalMs);
  timer.unref?.();

  return {
    callId,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}
