export type {
  Agent,
  AgentContext,
  CallInfo,
  SayOptions,
  SpeechHandle,
  SpeechResult,
  SpeechSource,
  UserTurn,
} from './agent.ts';
export { EchoAgent, type EchoAgentOptions } from './brains/echo.ts';
export { LoopbackAgent } from './brains/loopback.ts';
export { ScriptedBrain } from './brains/scripted.ts';
export { type AgentRecord, DEFAULT_BRAIN, parseAgentRecord, RECORD_DEFAULTS } from './config.ts';
export { Conversation } from './conversation.ts';
export { defaultRegistry, sharedRegistry } from './default-registry.ts';
export { ProviderRegistry, UnavailableError } from './registry.ts';
export { BUILTIN_AGENTS, loadAgentConfig } from './resolve.ts';
export { EnergyVad, type EnergyVadOptions, ModelVad, type Vad, type VadEvent } from './vad.ts';
