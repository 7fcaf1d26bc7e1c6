/**
 * Names of the Store keys, streams and channels both planes share. Control writes agent
 * configs and number routes here; core reads them on the hot path and writes call events.
 * One module, so neither side spells a key by hand.
 */
export const keys = {
  /** JSON agent config (`AgentConfig` in core/agent/agent.ts plus control's fields), by agent id. */
  agent: (agentId: string) => `agent:${agentId}`,
  /** JSON `{ agentId, accountId, provider }` routing an E.164 number to an agent. */
  numberRoute: (e164: string) => `number:${e164}`,
  /** JSON state of a live call (who owns it, its leases, its agent). */
  call: (callId: string) => `call:${callId}`,
  /** JSON `{ variables, campaignId? }` control leaves for a call it places (a campaign contact's data). */
  callContext: (callId: string) => `call:${callId}:context`,
  /** Per-call timeline stream: every step of one call, in order. */
  callTimeline: (callId: string) => `call:${callId}:timeline`,
  /** The global event stream control's recorder and dispatcher consume (consumer groups). */
  events: 'events',
  /** Pub/sub channel for live commands (hangup, transfer, say) to the node owning a call. */
  callCommands: (callId: string) => `call:${callId}:commands`,
} as const;
