export type { Agent, AgentConfig, AgentContext, UserTurn } from './agent.ts';
export { EchoAgent, type EchoAgentOptions } from './echo-agent.ts';
export { LoopbackAgent } from './loopback-agent.ts';
export { BUILTIN_AGENTS, createAgent, loadAgentConfig } from './resolve.ts';
export { EnergyVad, type EnergyVadOptions, type Vad, type VadEvent } from './vad.ts';
