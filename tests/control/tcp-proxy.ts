import { createServer, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP relay in front of a database, so a test can take "Postgres" away from one client and
 * give it back without touching the server others share: `cut()` drops every connection and
 * refuses new ones, `restore()` lets them through again.
 */
export interface TcpProxy {
  /** `url` with its host and port replaced by the proxy's. */
  url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 5432);
  const sockets = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('proxy has no port');
  const port = address.port;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  // Down means refused: the listener closes (ECONNREFUSED, as for a stopped server) and every
  // open connection is cut.
  const cut = async () => {
    if (down) return;
    down = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    sockets.clear();
    await closed;
  };
  return {
    url: url.toString(),
    cut,
    async restore() {
      if (!down) return;
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      down = false;
    },
    stop: cut,
  };
}
