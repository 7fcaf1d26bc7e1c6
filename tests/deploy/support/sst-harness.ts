/**
 * Runs `sst.config.ts` the way `sst deploy` does — SST's own `run()` wrapper and components,
 * the real Pulumi SDK — with Pulumi's resource mocks standing in for AWS, and writes every
 * resource the program registers to a JSON file. It runs in a Node child process, bundled by
 * `run-sst.ts` next to `.sst/platform` (so `@pulumi/*` resolve to the copies SST installed),
 * and receives the SST and Pulumi modules from the generated entry so this file stays free of
 * `.sst` types.
 *
 * What SST's CLI provides and this replaces: the globals `$app`, `$cli` and `$dev` (the CLI
 * defines them when it bundles the config; `$config`, `$interpolate`, `$resolve`… come from
 * `src/shim/run.js`, injected into the bundle exactly as the CLI does), `sst` and `aws`, the
 * `SST_SECRET_<Name>` environment the CLI sets from `sst secret set`, and the CLI's RPC server
 * (`SST_SERVER`): `Provider.Aws.Bootstrap` answers with a fake bootstrap bucket and ECR
 * repository, `Runtime.Build` bundles the Lambda handler with esbuild the way SST does for a
 * Node.js function.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** One registered resource, as the test reads it. */
export interface CapturedResource {
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  /** Resource options after every transformation (SST's retain rule included). */
  retainOnDelete?: boolean;
  protect?: boolean;
}

export interface HarnessResult {
  stage: string;
  app: Record<string, unknown>;
  outputs: Record<string, unknown>;
  resources: CapturedResource[];
  builds: { handler: string; runtime: string; exportsHandler: boolean }[];
  errors: string[];
}

interface MockResourceArgs {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  custom?: boolean;
  id?: string;
}

interface MockCallArgs {
  token: string;
  inputs: Record<string, unknown>;
}

interface TransformationArgs {
  type: string;
  name: string;
  props: Record<string, unknown>;
  opts: { retainOnDelete?: boolean; protect?: boolean };
}

/** The slice of `@pulumi/pulumi` the harness drives. */
export interface PulumiApi {
  runtime: {
    setMocks(
      mocks: {
        newResource(args: MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }>;
        call(args: MockCallArgs): Promise<Record<string, unknown>>;
      },
      project: string,
      stack: string,
      preview: boolean,
    ): Promise<void>;
    runInPulumiStack(init: () => Promise<unknown>): Promise<unknown>;
    registerStackTransformation(t: (args: TransformationArgs) => undefined): void;
  };
}

export interface HarnessModules {
  pulumi: PulumiApi;
  /** `waitForRPCs` from `@pulumi/pulumi/runtime/settings`. */
  waitForRPCs: () => Promise<void>;
  sst: unknown;
  aws: unknown;
  /** SST's `src/auto/run.ts`. */
  run: (program: () => Promise<unknown>) => Promise<Record<string, unknown>>;
  /** `sst.config.ts`'s default export. */
  config: { run(): Promise<unknown> };
  /** esbuild's `build`, from SST's platform install, for `Runtime.Build`. */
  build: (options: Record<string, unknown>) => Promise<{ errors: { text: string }[] }>;
}

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

export async function runHarness(m: HarnessModules): Promise<void> {
  const stage = need('SIPAI_HARNESS_STAGE');
  const root = need('SIPAI_HARNESS_ROOT');
  const resultFile = need('SIPAI_HARNESS_RESULT');
  const work = await mkdtemp(path.join(tmpdir(), 'sipai-sst-'));

  const errors: string[] = [];
  const resources: CapturedResource[] = [];
  const builds: HarnessResult['builds'] = [];
  const originalError = console.error;
  console.error = (...args: unknown[]) => {
    errors.push(args.map(String).join(' '));
    originalError(...args);
  };
  process.on('unhandledRejection', (reason) => errors.push(`unhandled rejection: ${String(reason)}`));

  const rpc = await startRpcServer(async (method, params) => {
    if (method === 'Provider.Aws.Bootstrap') {
      return {
        asset: `sst-asset-${ACCOUNT}`,
        assetEcrRegistryId: ACCOUNT,
        assetEcrUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/sst-asset`,
        state: `sst-state-${ACCOUNT}`,
        appsyncHttp: '',
        appsyncRealtime: '',
      };
    }
    if (method === 'Runtime.Build') return buildNodeFunction(m, root, work, params, builds);
    throw new Error(`rpc: can't find method ${method}`);
  });
  process.env.SST_SERVER = `http://127.0.0.1:${(rpc.address() as { port: number }).port}`;

  const appConfig = JSON.parse(need('SIPAI_HARNESS_APP')) as Record<string, unknown>;
  // `$app`, `$cli` and `$dev` were defined at bundle time, as the CLI does; the component
  // namespaces are globals too (the CLI prepends imports of them to the bundle).
  const globals = globalThis as Record<string, unknown>;
  globals.sst = m.sst;
  globals.aws = m.aws;

  const optionsSeen = new Map<string, { retainOnDelete?: boolean; protect?: boolean }>();
  await m.pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const state = fakeState(args);
        const captured: CapturedResource = {
          type: args.type,
          name: args.name,
          custom: args.custom ?? false,
          inputs: args.inputs,
        };
        const opts = optionsSeen.get(`${args.type}::${args.name}`);
        if (opts) Object.assign(captured, opts);
        resources.push(captured);
        return { id: `${args.name}-id`, state };
      },
      async call(args) {
        return fakeCall(args);
      },
    },
    String(appConfig.name),
    stage,
    false,
  );

  let outputs: Record<string, unknown> = {};
  try {
    outputs = (await m.pulumi.runtime.runInPulumiStack(() =>
      m.run(async () => {
        // Registered after SST's own stack transformations, so it sees their result.
        m.pulumi.runtime.registerStackTransformation((t) => {
          optionsSeen.set(`${t.type}::${t.name}`, {
            retainOnDelete: t.opts.retainOnDelete,
            protect: t.opts.protect,
          });
          return undefined;
        });
        return m.config.run();
      }),
    )) as Record<string, unknown>;
    await settle(m, () => resources.length);
  } catch (err) {
    errors.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  } finally {
    rpc.close();
    console.error = originalError;
    await rm(work, { recursive: true, force: true });
  }

  const result: HarnessResult = { stage, app: appConfig, outputs: plain(outputs), resources, builds, errors };
  await writeFile(resultFile, JSON.stringify(result, null, 1));
}

/** Waits until the program stops registering resources (outputs resolve in waves). */
async function settle(m: HarnessModules, count: () => number): Promise<void> {
  let last = -1;
  let stableRounds = 0;
  const deadline = Date.now() + 60_000;
  while (stableRounds < 5 && Date.now() < deadline) {
    await m.waitForRPCs();
    await new Promise((r) => setTimeout(r, 50));
    const now = count();
    stableRounds = now === last ? stableRounds + 1 : 0;
    last = now;
  }
}

/** Outputs as JSON: Pulumi resources in them reduce to their URN-less name. */
function plain(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(value, (_k, v) =>
      v && typeof v === 'object' && '__pulumiType' in (v.constructor ?? {}) ? '[resource]' : v,
    ),
  ) as Record<string, unknown>;
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

/** SST's CLI RPC: JSON-RPC 1.0 over HTTP POST /rpc (see `.sst/platform/src/components/rpc/rpc.ts`). */
function startRpcServer(handle: (method: string, params: Record<string, unknown>) => Promise<unknown>) {
  return new Promise<Server>((resolve) => {
    const server = createServer(async (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        method: string;
        params: unknown[];
      };
      let reply: { result?: unknown; error?: string };
      try {
        reply = { result: await handle(body.method, (body.params[0] ?? {}) as Record<string, unknown>) };
      } catch (err) {
        reply = { error: err instanceof Error ? err.message : String(err) };
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply));
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * `Runtime.Build` for a Node.js function: bundle `<file>.ts` of `<file>.<export>` to ESM with
 * esbuild, as SST does, then import the bundle to prove the export exists.
 */
async function buildNodeFunction(
  m: HarnessModules,
  root: string,
  work: string,
  input: Record<string, unknown>,
  builds: HarnessResult['builds'],
) {
  const handler = String(input.handler);
  const runtime = String(input.runtime);
  const dot = handler.lastIndexOf('.');
  const file = handler.slice(0, dot);
  const exportName = handler.slice(dot + 1);
  const out = path.join(work, 'functions', String(input.functionID));
  await mkdir(out, { recursive: true });
  const entry = path.join(root, `${file}.ts`);
  const outfile = path.join(out, `${file}.mjs`);
  const result = await m
    .build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      outfile,
      logLevel: 'silent',
    })
    .catch((err: { errors?: { text: string }[] }) => ({ errors: err.errors ?? [{ text: String(err) }] }));
  if (result.errors.length > 0) {
    return { handler, out, errors: result.errors.map((e) => e.text), sourcemaps: [] };
  }
  const mod = (await import(pathToFileURL(outfile).href)) as Record<string, unknown>;
  builds.push({ handler, runtime, exportsHandler: typeof mod[exportName] === 'function' });
  return { handler: `${file}.${exportName}`, out, errors: [], sourcemaps: [] };
}

/** What AWS would report back for a resource: its inputs plus the computed fields SST reads. */
function fakeState(args: MockResourceArgs): Record<string, unknown> {
  const name = args.name;
  const inputs = args.inputs;
  const service = args.type.split(':')[1]?.split('/')[0] ?? 'x';
  const base: Record<string, unknown> = {
    ...inputs,
    arn: `arn:aws:${service}:${REGION}:${ACCOUNT}:${name}`,
    name: inputs.name ?? name,
  };
  switch (args.type) {
    case 'aws:lb/loadBalancer:LoadBalancer':
      return {
        ...base,
        arn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:loadbalancer/app/${name}/50dc6c495c0c9188`,
        arnSuffix: `app/${name}/50dc6c495c0c9188`,
        dnsName: `${name.toLowerCase()}.${REGION}.elb.amazonaws.com`,
        zoneId: 'Z35SXDOTRQ7X7K',
        vpcId: inputs.vpcId ?? 'vpc-id',
        securityGroups: inputs.securityGroups ?? [],
      };
    case 'aws:lb/targetGroup:TargetGroup':
      return {
        ...base,
        arn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/${name}/73e2d6bc24d8a067`,
        arnSuffix: `targetgroup/${name}/73e2d6bc24d8a067`,
      };
    case 'aws:lb/listener:Listener':
      return { ...base, arn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:listener/app/${name}/1` };
    case 'aws:ec2/vpc:Vpc':
      return { ...base, cidrBlock: inputs.cidrBlock ?? '10.0.0.0/16' };
    case 'aws:elasticache/replicationGroup:ReplicationGroup':
      return {
        ...base,
        clusterEnabled: inputs.clusterMode === 'enabled',
        primaryEndpointAddress: `master.${name.toLowerCase()}.cache.amazonaws.com`,
        configurationEndpointAddress: `clustercfg.${name.toLowerCase()}.cache.amazonaws.com`,
        port: inputs.port ?? 6379,
      };
    case 'aws:rds/instance:Instance':
      return {
        ...base,
        endpoint: `${name.toLowerCase()}.rds.amazonaws.com:5432`,
        address: `${name.toLowerCase()}.rds.amazonaws.com`,
        port: 5432,
      };
    case 'aws:lambda/function:Function':
      return {
        ...base,
        arn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`,
        invokeArn: `arn:aws:apigateway:${REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}/invocations`,
        qualifiedArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}:$LATEST`,
        version: '$LATEST',
      };
    case 'aws:apigatewayv2/api:Api':
      return {
        ...base,
        apiEndpoint: `https://${name.toLowerCase()}.execute-api.${REGION}.amazonaws.com`,
        executionArn: `arn:aws:execute-api:${REGION}:${ACCOUNT}:${name}`,
      };
    case 'aws:apigatewayv2/domainName:DomainName':
      return {
        ...base,
        domainNameConfiguration: {
          ...(inputs.domainNameConfiguration as Record<string, unknown>),
          targetDomainName: `d-${name.toLowerCase()}.execute-api.${REGION}.amazonaws.com`,
          hostedZoneId: 'Z1UJRXOUMOOFQ8',
        },
      };
    case 'aws:acm/certificate:Certificate':
      return {
        ...base,
        domainValidationOptions: [
          inputs.domainName,
          ...((inputs.subjectAlternativeNames as string[]) ?? []),
        ].map((domainName) => ({
          domainName,
          resourceRecordName: `_x1.${domainName}.`,
          resourceRecordType: 'CNAME',
          resourceRecordValue: '_x2.acm-validations.aws.',
        })),
      };
    case 'random:index/randomPassword:RandomPassword':
      return { ...base, result: 'pa$s#w&rd<with>special-chars' };
    case 'random:index/randomBytes:RandomBytes':
      return { ...base, base64: Buffer.alloc(32, 7).toString('base64'), hex: '07'.repeat(32) };
    case 'docker-build:index:Image':
      return {
        ...base,
        digest: 'sha256:0d2b1c4f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e',
        ref: 'image',
      };
    case 'pulumi-nodejs:dynamic:Resource':
      return { ...base, zoneId: 'Z0HOSTEDZONE', roleArn: `arn:aws:iam::${ACCOUNT}:role/rds` };
    default:
      return base;
  }
}

/** Answers to the data-source calls (invokes) the components make. */
function fakeCall(args: MockCallArgs): Record<string, unknown> {
  switch (args.token) {
    case 'aws:index/getRegion:getRegion':
      return { name: REGION, region: REGION, id: REGION, description: 'US East (N. Virginia)' };
    case 'aws:index/getPartition:getPartition':
      return { partition: 'aws', dnsSuffix: 'amazonaws.com', id: 'aws' };
    case 'aws:index/getCallerIdentity:getCallerIdentity':
      return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/ci`, userId: 'AIDA', id: ACCOUNT };
    case 'aws:iam/getPolicyDocument:getPolicyDocument':
      return {
        json: JSON.stringify({ Version: '2012-10-17', Statement: args.inputs.statements ?? [] }),
        id: 'doc',
      };
    case 'aws:index/getAvailabilityZones:getAvailabilityZones':
      return {
        names: [`${REGION}a`, `${REGION}b`, `${REGION}c`],
        zoneIds: ['use1-az1', 'use1-az2', 'use1-az4'],
        id: REGION,
      };
    case 'aws:ec2/getAmi:getAmi':
      return { id: 'ami-0fcknat', architecture: 'arm64' };
    case 'aws:ecr/getAuthorizationToken:getAuthorizationToken':
      return {
        proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`,
        password: 'token',
        userName: 'AWS',
        authorizationToken: 'QVdTOnRva2Vu',
        id: ACCOUNT,
      };
    case 'aws:route53/getZone:getZone':
      return { zoneId: 'Z0HOSTEDZONE', name: String(args.inputs.name ?? ''), id: 'Z0HOSTEDZONE' };
    default:
      return { id: args.token };
  }
}
