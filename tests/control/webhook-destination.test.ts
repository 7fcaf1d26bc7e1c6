import { describe, expect, it } from 'vitest';
import { checkDestination, isPrivateAddress } from '../../control/modules/webhooks/destination.ts';

describe('webhook destinations', () => {
  it('tells private, loopback and link-local addresses from public ones', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fe80::1',
      'fd00:ec2::254',
      'fc00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      'ff02::1',
    ])
      expect(isPrivateAddress(ip), ip).toBe(true);
    for (const ip of [
      '8.8.8.8',
      '1.1.1.1',
      '172.32.0.1',
      '100.128.0.1',
      '2606:4700:4700::1111',
      '::ffff:8.8.8.8',
    ])
      expect(isPrivateAddress(ip), ip).toBe(false);
    expect(isPrivateAddress('not an ip')).toBe(true);
  });

  it('refuses private destinations by name, by literal and in disguise', async () => {
    const resolve = async (host: string) =>
      ({
        'metadata.example.com': ['169.254.169.254'],
        'mixed.example.com': ['8.8.8.8', '10.0.0.1'],
        'public.example.com': ['93.184.216.34'],
      })[host] ?? [];
    const refused = [
      'http://metadata.example.com/latest/meta-data',
      'http://mixed.example.com/',
      'http://127.0.0.1:6379/',
      'http://[::1]/',
      'http://[::ffff:7f00:1]/',
      'http://2130706433/', // 127.0.0.1 as one number
      'http://0x7f.1/',
      'http://localhost/', // resolves (to nothing here) : refused as unresolvable
    ];
    for (const url of refused)
      await expect(checkDestination(url, { allowPrivate: false, resolve }), url).rejects.toThrow();
    const ok = await checkDestination('https://public.example.com/hook', { allowPrivate: false, resolve });
    expect(ok.addresses).toEqual(['93.184.216.34']);
    // Allowed for local development, but still only http(s) and without credentials.
    await expect(
      checkDestination('http://127.0.0.1:9/', { allowPrivate: true, resolve }),
    ).resolves.toBeDefined();
    await expect(checkDestination('ftp://example.com/', { allowPrivate: true })).rejects.toThrow(/http/);
    await expect(checkDestination('https://u:p@example.com/', { allowPrivate: true })).rejects.toThrow(
      /credentials/,
    );
  });

  it('resolves real names with the system resolver', async () => {
    await expect(checkDestination('http://localhost:9/', { allowPrivate: false })).rejects.toThrow(
      /private|resolve/,
    );
  });
});
