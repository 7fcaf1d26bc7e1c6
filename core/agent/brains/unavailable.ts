import type { Agent, AgentContext } from '../agent.ts';

/** Said when the agent cannot run on this deployment, before the call ends. */
export const UNAVAILABLE_APOLOGY =
  "I'm sorry, this line can't take calls right now because it is not fully set up. Please try again later. Goodbye.";

/**
 * Stands in for an agent this node cannot run (a missing Debian package, key or adapter): the
 * call is answered, the reason goes on the timeline and the call record, the caller hears an
 * apology when any offline voice is there, and the call ends with `agent_unavailable`.
 */
export class UnavailableAgent implements Agent {
  readonly kind = 'unavailable';

  constructor(
    private readonly reasons: string[],
    private readonly canSpeak: boolean,
  ) {}

  async start(ctx: AgentContext): Promise<void> {
    ctx.event('agent.unavailable', { reasons: this.reasons });
    if (this.canSpeak) {
      const handle = ctx.say(UNAVAILABLE_APOLOGY, { allowInterruptions: false });
      await handle.done;
    }
    ctx.hangup(`agent unavailable: ${this.reasons.join('; ')}`);
  }
}
