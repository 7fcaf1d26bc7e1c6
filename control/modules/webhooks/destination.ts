import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/**
 * Where webhooks may go. A tenant names the URL, the platform makes the request: without a
 * check, an endpoint at `http://169.254.169.254/…` or `http://10.0.0.5:6379` would make the
 * platform call its own internals. So every address a host name resolves to must be public,
 * checked when the endpoint is saved and again before every delivery (a name may be pointed
 * elsewhere later). `WEBHOOK_ALLOW_PRIVATE_URLS=true` lifts the rule for local development.
 */

/** Resolves a host name to its addresses (IPv4 and IPv6), as the OS resolver does. */
export type Resolve = (host: string) => Promise<string[]>;

/** The OS resolver, every address. */
export const systemResolve: Resolve = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Why a destination is refused; `field`-free, the caller names the field. */
export class DestinationError extends Error {
  constructor(
    message: string,
    /** `unresolvable`: the name did not resolve (may be temporary); `forbidden`: never allowed. */
    readonly kind: 'invalid' | 'forbidden' | 'unresolvable',
  ) {
    super(message);
    this.name = 'DestinationError';
  }
}

/** IPv4 ranges that are not the public internet (RFC 6890 and friends), as [base, prefix]. */
const PRIVATE_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

function v4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

const PRIVATE_V4_RANGES = PRIVATE_V4.map(([base, bits]) => {
  const size = 2 ** (32 - bits);
  const start = v4ToInt(base);
  return [start, start + size - 1] as const;
});

function privateV4(ip: string): boolean {
  const n = v4ToInt(ip);
  return PRIVATE_V4_RANGES.some(([lo, hi]) => n >= lo && n <= hi);
}

/** An IPv6 address as 8 numbers of 16 bits (an embedded IPv4 tail expanded). */
function v6Groups(ip: string): number[] {
  let addr = ip.split('%')[0]!.toLowerCase();
  const v4Tail = addr.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4Tail) {
    const n = v4ToInt(v4Tail[1]!);
    addr = `${addr.slice(0, -v4Tail[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g, 16));
}

function privateV6(ip: string): boolean {
  const g = v6Groups(ip);
  const zeroUntil = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUntil(8)) return true; // ::
  if (zeroUntil(7) && g[7] === 1) return true; // ::1
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d):
  // judged by the IPv4 address inside.
  const embedded = `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  if (zeroUntil(5) && (g[5] === 0xffff || g[5] === 0)) return privateV4(embedded);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return privateV4(embedded);
  if ((g[0]! & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((g[0]! & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((g[0]! & 0xffc0) === 0xfec0) return true; // fec0::/10 site-local (deprecated)
  if ((g[0]! & 0xff00) === 0xff00) return true; // multicast
  if (g[0] === 0x2001 && g[1] === 0x0db8) return true; // documentation
  if (g[0] === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return true; // 100::/64 discard-only
  return false;
}

/** Whether `ip` (v4 or v6) is loopback, private, link-local or otherwise not a public address. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return privateV4(ip);
  if (family === 6) return privateV6(ip);
  return true;
}

/** Checks the URL's form: http(s), no credentials, a host. Returns it parsed. */
export function parseDestination(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DestinationError('must be an absolute http:// or https:// URL', 'invalid');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new DestinationError('must start with http:// or https://', 'invalid');
  if (url.username || url.password)
    throw new DestinationError('must not carry credentials; the signature authenticates requests', 'invalid');
  if (!url.hostname) throw new DestinationError('must name a host', 'invalid');
  return url;
}

/** The URL's host without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/**
 * Checks that `raw` may receive webhooks and returns the addresses it resolves to (empty when
 * private ones are allowed and the name does not resolve). Throws a {@link DestinationError}.
 */
export async function checkDestination(
  raw: string,
  opts: { allowPrivate: boolean; resolve?: Resolve },
): Promise<{ url: URL; addresses: string[] }> {
  const url = parseDestination(raw);
  if (opts.allowPrivate) return { url, addresses: [] };
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (opts.resolve ?? systemResolve)(host);
    } catch {
      throw new DestinationError(`host ${host} does not resolve`, 'unresolvable');
    }
    if (addresses.length === 0) throw new DestinationError(`host ${host} does not resolve`, 'unresolvable');
  }
  const blocked = addresses.find(isPrivateAddress);
  if (blocked)
    throw new DestinationError(
      `resolves to ${blocked}, a private, loopback or link-local address; webhooks go to public addresses only`,
      'forbidden',
    );
  return { url, addresses };
}
