export {
  type HttpServerOptions,
  onShutdownSignal,
  type Plane,
  type RunningHttpServer,
  startHttpServer,
} from './http-server.ts';
