import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One Prometheus registry per process, shared by core and control (the local entry runs both
 * in one process and serves one `/metrics`). Process metrics (CPU, RSS, GC, event-loop lag)
 * are collected once.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });

/** The body and content type of a `GET /metrics` answer. */
export async function metricsResponse(): Promise<Response> {
  return new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType } });
}
