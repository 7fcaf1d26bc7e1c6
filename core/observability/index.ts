export { createLogger, type Logger } from './log.ts';
export { metricsResponse, registry } from './metrics.ts';
