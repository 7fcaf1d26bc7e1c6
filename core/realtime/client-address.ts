import { isIP } from 'node:net';

/** Loopback, RFC 1918, link-local and unique-local addresses: where a load balancer connects from. */
function isPrivateAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return (
      a === 10 ||
      a === 127 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254)
    );
  }
  const v6 = address.toLowerCase();
  return v6 === '::1' || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80:');
}

/**
 * The address a request comes from, for per-client limits (control's failed authentications,
 * core's cap on media sockets that have not started). `peer` is the socket's address (null when
 * the request did not come over a socket we see). A peer on a private network is a load balancer
 * (the ALB in production): then the client is the last `X-Forwarded-For` entry, the one that
 * balancer appended (earlier entries are whatever the client sent). A public peer is the client
 * itself and its `X-Forwarded-For` is ignored. Null when neither says.
 */
export function clientAddress(req: Request, peer: string | null | undefined): string | null {
  if (peer && !isPrivateAddress(peer)) return peer;
  const forwarded = req.headers.get('x-forwarded-for');
  if (peer && forwarded) {
    const last = forwarded.split(',').at(-1)?.trim();
    if (last && isIP(last)) return last;
  }
  return peer ?? null;
}
