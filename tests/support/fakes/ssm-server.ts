/**
 * A local SSM Parameter Store speaking the AWS JSON 1.1 protocol the SDK uses
 * (`X-Amz-Target: AmazonSSM.GetParametersByPath`), with real pagination and SecureStrings that
 * come back decrypted only when asked. Requests must be SigV4-signed like AWS expects.
 */
export interface FakeParameter {
  name: string;
  value: string;
  secure?: boolean;
}

export interface FakeSsm {
  url: string;
  requests: { target: string | null; body: Record<string, unknown> }[];
  stop(): void;
}

export function startFakeSsm(
  params: FakeParameter[],
  opts: { pageSize?: number; failWith?: number } = {},
): FakeSsm {
  const requests: FakeSsm['requests'] = [];
  const pageSize = opts.pageSize ?? 2;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const target = req.headers.get('x-amz-target');
      const body = (await req.json()) as Record<string, unknown>;
      requests.push({ target, body });
      const json = (status: number, payload: unknown) =>
        new Response(JSON.stringify(payload), {
          status,
          headers: { 'content-type': 'application/x-amz-json-1.1' },
        });
      if (!req.headers.get('authorization')?.startsWith('AWS4-HMAC-SHA256 ')) {
        return json(400, { __type: 'MissingAuthenticationTokenException', message: 'unsigned request' });
      }
      if (opts.failWith)
        return json(opts.failWith, { __type: 'AccessDeniedException', message: 'not allowed' });
      if (target !== 'AmazonSSM.GetParametersByPath') {
        return json(400, { __type: 'InvalidAction', message: `unknown target ${target}` });
      }
      const path = String(body.Path);
      const recursive = body.Recursive === true;
      const matching = params.filter((p) => {
        if (!p.name.startsWith(path)) return false;
        return recursive || !p.name.slice(path.length).includes('/');
      });
      const start = body.NextToken ? Number(body.NextToken) : 0;
      const page = matching.slice(start, start + pageSize);
      const next = start + pageSize < matching.length ? String(start + pageSize) : undefined;
      return json(200, {
        Parameters: page.map((p) => ({
          Name: p.name,
          Type: p.secure ? 'SecureString' : 'String',
          Value: p.secure && body.WithDecryption !== true ? 'AQICAHencrypted==' : p.value,
          Version: 1,
        })),
        ...(next ? { NextToken: next } : {}),
      });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests, stop: () => server.stop(true) };
}
