import type { Logger } from '../observability/log.ts';
import { keys } from '../store/keys.ts';
import type { Store } from '../store/store.ts';
import { type AgentRecord, parseAgentRecord, RECORD_DEFAULTS } from './config.ts';

/**
 * Agents every deployment has without configuration: `echo` repeats each turn back (an echo
 * test with turn-taking and barge-in); `loopback` streams every frame straight back.
 */
export const BUILTIN_AGENTS: Record<string, AgentRecord> = {
  echo: { ...RECORD_DEFAULTS, intents: [], tools: [], id: 'echo', brain: 'echo', interruptMinMs: 0 },
  loopback: {
    ...RECORD_DEFAULTS,
    intents: [],
    tools: [],
    id: 'loopback',
    brain: 'loopback',
    bargeIn: false,
  },
};

/**
 * The agent's record as control mirrored it into the Store, or a built-in one. Null when the
 * agent does not exist, or its record does not parse (logged with the field at fault).
 */
export async function loadAgentConfig(
  store: Store,
  agentId: string,
  log?: Logger,
): Promise<AgentRecord | null> {
  const raw = await store.get(keys.agent(agentId));
  if (raw === null) return BUILTIN_AGENTS[agentId] ?? null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    log?.error({ agentId }, 'agent record is not JSON');
    return null;
  }
  const parsed = parseAgentRecord(agentId, value);
  if (!parsed.ok) {
    log?.error({ agentId, error: parsed.error }, 'agent record does not parse');
    return null;
  }
  return parsed.record;
}
