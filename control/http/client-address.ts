/** The client address rule is core's, shared by both planes. */
export { clientAddress } from '../../core/realtime/client-address.ts';

/** Socket addresses of requests, noted where the server hands them over (see Control.fetch). */
const peers = new WeakMap<Request, string>();

/** Notes the socket address `req` arrived from, for {@link peerOf}. */
export function rememberPeer(req: Request, address: string | null | undefined): void {
  if (address) peers.set(req, address);
}

/** The socket address noted for `req`, or null when it came in without one (in-process calls). */
export function peerOf(req: Request): string | null {
  return peers.get(req) ?? null;
}
