/**
 * The floor for the voice benchmark: a bare Bun.serve WebSocket server that sends every media
 * message straight back, parsing nothing. Whatever sipai costs above this is our own code.
 * `GET /stats` returns event-loop lag quantiles since the last call (perf_hooks), like the
 * core's /metrics does.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
let framesIn = 0;

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: '127.0.0.1',
  fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname === '/stats') {
      const body = { lagP50Ms: lag.percentile(50) / 1e6, lagP99Ms: lag.percentile(99) / 1e6, framesIn };
      lag.reset();
      return Response.json(body);
    }
    if (srv.upgrade(req, { data: undefined })) return undefined;
    return new Response('websocket only', { status: 426 });
  },
  websocket: {
    message(ws, message) {
      framesIn++;
      if (typeof message === 'string' && message.startsWith('{"event":"media"')) ws.send(message);
    },
    perMessageDeflate: false,
  },
});
console.log(`floor listening on ${server.port}`);
