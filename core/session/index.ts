export {
  CallSession,
  type CallSessionOptions,
  type EndReason,
  type SessionTransport,
} from './call-session.ts';
export { type CallCommand, parseCallCommand } from './commands.ts';
export { Playout, type PlayoutOptions } from './playout.ts';
export { Timeline, type TimelineOptions } from './timeline.ts';
