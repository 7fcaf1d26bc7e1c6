import { keys } from '../store/keys.ts';
import type { Store } from '../store/store.ts';
import type { Agent, AgentConfig } from './agent.ts';
import { EchoAgent } from './echo-agent.ts';
import { LoopbackAgent } from './loopback-agent.ts';

/**
 * Agents every deployment has without configuration: `echo` repeats each turn back (an echo
 * test with turn-taking and barge-in); `loopback` streams every frame straight back.
 */
export const BUILTIN_AGENTS: Record<string, AgentConfig> = {
  echo: { id: 'echo', brain: 'echo', bargeIn: true },
  loopback: { id: 'loopback', brain: 'loopback', bargeIn: false },
};

/**
 * The agent's config as control mirrored it into the Store, or a built-in one. Null when the
 * agent does not exist (the call is refused).
 */
export async function loadAgentConfig(store: Store, agentId: string): Promise<AgentConfig | null> {
  const raw = await store.get(keys.agent(agentId));
  if (raw === null) return BUILTIN_AGENTS[agentId] ?? null;
  try {
    const parsed = JSON.parse(raw) as Partial<AgentConfig>;
    return { ...parsed, id: agentId, brain: parsed.brain ?? 'echo' } as AgentConfig;
  } catch {
    return null;
  }
}

/** A fresh brain for one call, or null when this core cannot run that kind of brain yet. */
export function createAgent(config: AgentConfig): Agent | null {
  switch (config.brain) {
    case 'echo':
      return new EchoAgent();
    case 'loopback':
      return new LoopbackAgent();
    default:
      return null;
  }
}
