/**
 * `sst.config.ts` run for real — SST 4's components on the Pulumi SDK — with Pulumi's mocks in
 * place of AWS, for staging and production. The expectations are spelled out here, from the
 * deploy issue, not read back from infra/: removing a path rule, a health check, a stage rule or
 * the webhook route from the config fails a test below.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { albRules, albTargetPort, containerOf, envOf, ofType, one } from './support/resources.ts';
import { fakeSecretValue, type HarnessResult, runSstConfig } from './support/run-sst.ts';

const CORE_PORT = 8081;
const CONTROL_PORT = 8080;
const DOMAIN_ROOT = 'voice.example.org';

/** The secrets the issue names, by the environment variable the services read. */
const SECRET_ENV: Record<string, string> = {
  REALTIME_API_KEY: 'RealtimeApiKey',
  REALTIME_WS_SECRET: 'RealtimeWsSecret',
  JAMBONZ_WEBHOOK_SECRET: 'JambonzWebhookSecret',
  JAMBONZ_ACCOUNT_SID: 'JambonzAccountSid',
  JAMBONZ_API_KEY: 'JambonzApiKey',
  TWILIO_ACCOUNT_SID: 'TwilioAccountSid',
  TWILIO_AUTH_TOKEN: 'TwilioAuthToken',
  TELNYX_PUBLIC_KEY: 'TelnyxPublicKey',
  TELEPHONY_FORWARDER_SECRET: 'TelephonyForwarderSecret',
  ADMIN_API_KEY: 'AdminApiKey',
  OPENAI_API_KEY: 'OpenaiApiKey',
  DEEPGRAM_API_KEY: 'DeepgramApiKey',
  ELEVENLABS_API_KEY: 'ElevenlabsApiKey',
};

type Stage = 'staging' | 'production';
/** Each stage's run, or why the program crashed (every test of that stage then fails with it). */
const outcomes: Partial<Record<Stage, HarnessResult | Error>> = {};
const runs = {
  get staging() {
    return outcome('staging');
  },
  get production() {
    return outcome('production');
  },
};
function outcome(stage: Stage): HarnessResult {
  const o = outcomes[stage];
  if (o instanceof Error) throw o;
  if (!o) throw new Error(`stage ${stage} did not run`);
  return o;
}

beforeAll(async () => {
  const secrets = Object.values(SECRET_ENV);
  await Promise.all(
    (['staging', 'production'] as const).map(async (stage) => {
      outcomes[stage] = await runSstConfig({ stage, secrets, domainRoot: DOMAIN_ROOT }).catch(
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
    }),
  );
}, 180_000);

describe.each(['staging', 'production'] as const)('sst.config.ts on stage %s', (stage) => {
  const run = () => runs[stage];
  const apiHost = stage === 'production' ? `api.${DOMAIN_ROOT}` : `api.${stage}.${DOMAIN_ROOT}`;

  it('registers the whole stack without an error and builds the webhook Lambda', () => {
    expect(run().errors).toEqual([]);
    expect(run().builds).toEqual([
      { handler: 'core/lambda.handler', runtime: 'nodejs22.x', exportsHandler: true },
    ]);
    const services = ofType(run(), 'sst:aws:Service').map((s) => s.name);
    expect(services.sort()).toEqual(['Control', 'Core']);
    expect(ofType(run(), 'sst:aws:Alb')).toHaveLength(1);
  });

  it('sends /v1/realtime/*, /realtime/* and /telephony/* to core; /v1/realtime/tokens, /v1/* and /webhooks/* to control', () => {
    const https = one(run(), 'aws:lb/listener:Listener', 'EdgeListenerHTTPS443');
    const rules = albRules(run()).filter((r) => r.listenerArn.includes('EdgeListenerHTTPS443'));
    expect(
      rules
        .map((r) => ({ path: r.path, port: r.targetPort, priority: r.priority }))
        .sort((a, b) => a.path.localeCompare(b.path)),
    ).toEqual([
      { path: '/realtime/*', port: CORE_PORT, priority: 20 },
      { path: '/telephony/*', port: CORE_PORT, priority: 20 },
      { path: '/v1/*', port: CONTROL_PORT, priority: 100 },
      { path: '/v1/realtime/*', port: CORE_PORT, priority: 20 },
      { path: '/v1/realtime/tokens', port: CONTROL_PORT, priority: 10 },
      { path: '/webhooks/*', port: CONTROL_PORT, priority: 100 },
    ]);
    expect(https.inputs.port).toBe(443);
  });

  it('resolves request paths the way core/app.ts splits them, keeping /v1/realtime/tokens on control', () => {
    const rules = albRules(run()).filter((r) => r.listenerArn.includes('EdgeListenerHTTPS443'));
    expect(albTargetPort(rules, '/v1/realtime/voice')).toBe(CORE_PORT);
    expect(albTargetPort(rules, '/realtime/voice')).toBe(CORE_PORT);
    expect(albTargetPort(rules, '/telephony/twilio/stream')).toBe(CORE_PORT);
    expect(albTargetPort(rules, '/telephony/jambonz/call')).toBe(CORE_PORT);
    expect(albTargetPort(rules, '/v1/realtime/tokens')).toBe(CONTROL_PORT);
    expect(albTargetPort(rules, '/v1/realtime/sessions')).toBe(CORE_PORT);
    expect(albTargetPort(rules, '/webhooks/customer/inbound')).toBe(CONTROL_PORT);
    expect(albTargetPort(rules, '/v1/agents')).toBe(CONTROL_PORT);
    expect(albTargetPort(rules, '/v1/health')).toBe(CONTROL_PORT);
    // No rule: the listener's 403 default. Metrics stay private.
    expect(albTargetPort(rules, '/metrics')).toBeUndefined();
    expect(albTargetPort(rules, '/')).toBeUndefined();
  });

  it('health-checks core on /health and control on /v1/health every 15 s (timeout 5 s, healthy 2, unhealthy 3)', () => {
    const groups = ofType(run(), 'aws:lb/targetGroup:TargetGroup');
    const check = { interval: 15, timeout: 5, healthyThreshold: 2, unhealthyThreshold: 3 };
    expect(groups.map((g) => Number(g.inputs.port))).toEqual(
      expect.arrayContaining([CORE_PORT, CONTROL_PORT]),
    );
    for (const g of groups) {
      const path = Number(g.inputs.port) === CORE_PORT ? '/health/live' : '/v1/health';
      expect(g.inputs.healthCheck, g.name).toMatchObject({ path, ...check });
    }
  });

  it('keeps idle WebSockets for at least an hour and redirects plain HTTP to HTTPS', () => {
    const lb = one(run(), 'aws:lb/loadBalancer:LoadBalancer', 'EdgeLoadBalancer');
    expect(Number(lb.inputs.idleTimeout)).toBeGreaterThanOrEqual(3600);
    expect(lb.inputs.internal).toBe(false);
    const http = one(run(), 'aws:lb/listener:Listener', 'EdgeListenerHTTP80');
    expect(http.inputs.defaultActions).toEqual([
      { type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } },
    ]);
    const https = one(run(), 'aws:lb/listener:Listener', 'EdgeListenerHTTPS443');
    expect(String(https.inputs.certificateArn)).toMatch(/^arn:aws:acm:/);
    const certs = ofType(run(), 'aws:acm/certificate:Certificate').map((c) => c.inputs.domainName);
    expect(certs).toContain(apiHost);
  });

  it('lets calls drain: deregistration delay, then SHUTDOWN_GRACE_MS inside the container stop timeout', () => {
    for (const service of ['Core', 'Control'] as const) {
      const grace = Number(envOf(run(), service).SHUTDOWN_GRACE_MS);
      const stopTimeout = containerOf(run(), service).stopTimeout ?? 30;
      const groups = ofType(run(), 'aws:lb/targetGroup:TargetGroup').filter((g) =>
        g.name.startsWith(service),
      );
      expect(groups.length).toBeGreaterThanOrEqual(1);
      for (const group of groups)
        expect(Number(group.inputs.deregistrationDelay)).toBeGreaterThanOrEqual(grace / 1000);
      // core/main.ts and control/main.ts force-exit 5 s after the grace: still before SIGKILL.
      expect(grace + 5000).toBeLessThan(stopTimeout * 1000);
      expect(grace).toBeGreaterThanOrEqual(30_000);
    }
  });

  it('rolls back a failing deploy (circuit breaker) and keeps 100 % of tasks up while it runs (200 % max)', () => {
    for (const s of ofType(run(), 'aws:ecs/service:Service')) {
      expect(s.inputs.deploymentCircuitBreaker).toEqual({ enable: true, rollback: true });
      expect(s.inputs.deploymentMinimumHealthyPercent).toBe(100);
      expect(s.inputs.deploymentMaximumPercent).toBe(200);
    }
  });

  it('links every secret into both services and passes it as the variable they read', () => {
    for (const service of ['Core', 'Control'] as const) {
      const env = envOf(run(), service);
      for (const [variable, secret] of Object.entries(SECRET_ENV)) {
        expect(env[variable], `${service} ${variable}`).toBe(fakeSecretValue(secret));
        expect(JSON.parse(env[`SST_RESOURCE_${secret}`] ?? '{}'), `${service} link ${secret}`).toMatchObject({
          value: fakeSecretValue(secret),
        });
      }
    }
  });

  it('gives the services their public URL, the TLS Redis URL, and control its database', () => {
    const group = one(run(), 'aws:elasticache/replicationGroup:ReplicationGroup', 'StoreCluster');
    expect(group.inputs).toMatchObject({
      engine: 'valkey',
      clusterMode: 'disabled',
      transitEncryptionEnabled: true,
    });
    for (const service of ['Core', 'Control'] as const) {
      const env = envOf(run(), service);
      expect(env.PUBLIC_BASE_URL).toBe(`https://${apiHost}`);
      const redis = new URL(env.REDIS_URL ?? '');
      expect(redis.protocol).toBe('rediss:');
      expect(redis.hostname).toBe('master.storecluster.cache.amazonaws.com');
      expect(decodeURIComponent(redis.password)).toBe('pa$s#w&rd<with>special-chars');
      expect(Number(env.TELEPHONY_GLOBAL_MAX_CONCURRENCY)).toBeGreaterThan(0);
      expect(env.PORT).toBe(String(service === 'Core' ? CORE_PORT : CONTROL_PORT));
    }
    const database = new URL(envOf(run(), 'Control').DATABASE_URL ?? '');
    expect(database.protocol).toBe('postgres:');
    expect(database.hostname).toBe('databaseinstance.rds.amazonaws.com');
    expect(database.searchParams.get('sslmode')).toBe('require');
    expect(envOf(run(), 'Core').DATABASE_URL).toBeUndefined();
  });

  it('routes every provider webhook through API Gateway to the forwarder Lambda, which calls the ALB', () => {
    const route = ofType(run(), 'aws:apigatewayv2/route:Route');
    // The runbooks configure Twilio and Telnyx with {gateway}/webhooks/<provider>/<voice|status>.
    expect(route.map((r) => r.inputs.routeKey).sort()).toEqual([
      'ANY /telephony/{proxy+}',
      'POST /webhooks/telnyx/status',
      'POST /webhooks/telnyx/voice',
      'POST /webhooks/twilio/status',
      'POST /webhooks/twilio/voice',
    ]);
    const fn = one(run(), 'aws:lambda/function:Function', 'VoiceWebhookForwarderFunction');
    for (const r of route) {
      const integrationName = String(r.inputs.target)
        .replace(/^integrations\//, '')
        .replace(/-id$/, '');
      const integration = one(run(), 'aws:apigatewayv2/integration:Integration', integrationName);
      expect(integration.inputs).toMatchObject({ integrationType: 'AWS_PROXY', payloadFormatVersion: '2.0' });
      expect(String(integration.inputs.integrationUri)).toContain(':function:VoiceWebhookForwarderFunction');
    }
    expect(fn.inputs).toMatchObject({ runtime: 'nodejs22.x', handler: 'core/lambda.handler' });
    const variables = (fn.inputs.environment as { variables: Record<string, string> }).variables;
    expect(variables.CORE_INTERNAL_URL).toBe(`https://${apiHost}`);
    // The secret that makes core trust the forwarded original URL: the same value core gets.
    expect(variables.TELEPHONY_FORWARDER_SECRET).toBe(fakeSecretValue('TelephonyForwarderSecret'));
    expect(envOf(run(), 'Core').TELEPHONY_FORWARDER_SECRET).toBe(fakeSecretValue('TelephonyForwarderSecret'));
  });

  it('scales core on CPU and on live calls per task, and control on requests per target', () => {
    const policies = ofType(run(), 'aws:appautoscaling/policy:Policy');
    const config = (p: (typeof policies)[number]) =>
      p.inputs.targetTrackingScalingPolicyConfiguration as {
        predefinedMetricSpecification?: { predefinedMetricType: string };
        customizedMetricSpecification?: { metricName: string; namespace: string; statistic: string };
      };
    const kinds = (service: string) =>
      policies
        .filter((p) => String(p.inputs.resourceId).endsWith(`/${service}`))
        .map(
          (p) =>
            config(p).predefinedMetricSpecification?.predefinedMetricType ??
            config(p).customizedMetricSpecification?.metricName,
        )
        .sort();
    expect(kinds('Core')).toEqual(['ECSServiceAverageCPUUtilization', 'sipai_sessions_active']);
    // Request-count scaling names one target group; production's blue/green moves between two.
    expect(kinds('Control')).toEqual(
      stage === 'production'
        ? ['ECSServiceAverageCPUUtilization']
        : ['ALBRequestCountPerTarget', 'ECSServiceAverageCPUUtilization'],
    );
  });

  it('alarms on ALB 5xx, unhealthy hosts, CPU and memory over 80 % and calls near the global limit', () => {
    const alarms = Object.fromEntries(
      ofType(run(), 'aws:cloudwatch/metricAlarm:MetricAlarm').map((a) => [String(a.inputs.name), a.inputs]),
    );
    const named = (key: string) => {
      const alarm = alarms[`sipai-${stage}-${key}`];
      if (!alarm) throw new Error(`no alarm ${key}; have ${Object.keys(alarms).join(', ')}`);
      return alarm;
    };
    expect(named('alb-5xx')).toMatchObject({
      namespace: 'AWS/ApplicationELB',
      metricName: 'HTTPCode_ELB_5XX_Count',
    });
    expect(named('targets-5xx')).toMatchObject({ metricName: 'HTTPCode_Target_5XX_Count' });
    for (const service of ['core', 'control']) {
      expect(named(`${service}-unhealthy-hosts`)).toMatchObject({
        metricName: 'UnHealthyHostCount',
        threshold: 1,
      });
      expect((named(`${service}-unhealthy-hosts`).dimensions as Record<string, string>).TargetGroup).toMatch(
        /^targetgroup\//,
      );
      expect(named(`${service}-cpu-high`)).toMatchObject({ metricName: 'CPUUtilization', threshold: 80 });
      expect(named(`${service}-memory-high`)).toMatchObject({
        metricName: 'MemoryUtilization',
        threshold: 80,
      });
    }
    const limit = Number(envOf(run(), 'Core').TELEPHONY_GLOBAL_MAX_CONCURRENCY);
    const calls = named('calls-near-limit');
    expect(calls).toMatchObject({
      namespace: 'sipai',
      metricName: 'sipai_sessions_active',
      statistic: 'Sum',
    });
    expect(Number(calls.threshold)).toBeLessThan(limit);
    expect(Number(calls.threshold)).toBeGreaterThanOrEqual(limit * 0.8);
    const topic = one(run(), 'aws:sns/topic:Topic', 'Alarms');
    for (const alarm of Object.values(alarms))
      expect(alarm.alarmActions).toEqual([`arn:aws:sns:us-east-1:123456789012:${topic.name}`]);
  });

  it('outputs the public URLs', () => {
    expect(run().outputs).toMatchObject({
      api: `https://${apiHost}`,
      health: `https://${apiHost}/v1/health`,
      realtimeVoice: `wss://${apiHost}/realtime/voice`,
      webhooks: `https://${apiHost.replace(/^api\./, 'hooks.')}`,
    });
  });
});

describe('sst.config.ts deployments', () => {
  type EcsLoadBalancer = {
    targetGroupArn: string;
    containerPort: number;
    advancedConfiguration?: {
      alternateTargetGroupArn: string;
      productionListenerRule: string;
      testListenerRule?: string;
      roleArn: string;
    };
  };

  it('rolls staging: ECS rolling updates, one target group per service, no alarms in the way', () => {
    for (const svc of ofType(runs.staging, 'aws:ecs/service:Service')) {
      expect(svc.inputs.deploymentConfiguration, svc.name).toMatchObject({ strategy: 'ROLLING' });
      expect(svc.inputs.alarms).toBeUndefined();
      const lbs = svc.inputs.loadBalancers as EcsLoadBalancer[];
      expect(lbs).toHaveLength(1);
      expect(lbs[0]?.advancedConfiguration).toBeUndefined();
    }
    expect(
      ofType(runs.staging, 'aws:lb/listener:Listener')
        .map((l) => l.name)
        .sort(),
    ).toEqual(['EdgeListenerHTTP80', 'EdgeListenerHTTPS443']);
  });

  it('deploys production blue/green: bake time, rollback on the 5xx alarms, each rule shifting between a pair', () => {
    const run = runs.production;
    const rules = ofType(run, 'aws:lb/listenerRule:ListenerRule');
    const alarms = new Set(ofType(run, 'aws:cloudwatch/metricAlarm:MetricAlarm').map((a) => a.inputs.name));
    const testListener = one(run, 'aws:lb/listener:Listener', 'EdgeTestListener');
    expect(testListener.inputs).toMatchObject({ port: 9443, protocol: 'HTTP' });
    const role = one(run, 'aws:iam/role:Role', 'EcsBlueGreenRole');
    expect(role.inputs.managedPolicyArns).toEqual([
      'arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers',
    ]);
    expect(JSON.parse(String(role.inputs.assumeRolePolicy)).Statement[0].Principal).toEqual({
      Service: 'ecs.amazonaws.com',
    });
    const arnOf = (r: { name: string }) => `arn:aws:lb:us-east-1:123456789012:${r.name}`;
    const expectedEntries = { Core: 1, Control: 2 };
    for (const [service, count] of Object.entries(expectedEntries)) {
      const svc = one(run, 'aws:ecs/service:Service', `${service}Service`);
      expect(svc.inputs.deploymentConfiguration).toEqual({ strategy: 'BLUE_GREEN', bakeTimeInMinutes: '10' });
      expect(svc.inputs.deploymentCircuitBreaker).toEqual({ enable: true, rollback: true });
      const rollback = svc.inputs.alarms as { enable: boolean; rollback: boolean; alarmNames: string[] };
      expect(rollback).toMatchObject({ enable: true, rollback: true });
      expect(rollback.alarmNames.sort()).toEqual([
        'sipai-production-alb-5xx',
        'sipai-production-targets-5xx',
      ]);
      for (const name of rollback.alarmNames) expect(alarms.has(name), name).toBe(true);
      const lbs = svc.inputs.loadBalancers as EcsLoadBalancer[];
      expect(lbs).toHaveLength(count);
      for (const lb of lbs) {
        const advanced = lb.advancedConfiguration;
        if (!advanced) throw new Error(`${service}: a load balancer entry without blue/green`);
        expect(advanced.roleArn).toBe(`arn:aws:iam:us-east-1:123456789012:${role.name}`);
        expect(advanced.alternateTargetGroupArn).not.toBe(lb.targetGroupArn);
        const production = rules.find((r) => arnOf(r) === advanced.productionListenerRule);
        const test = rules.find((r) => arnOf(r) === advanced.testListenerRule);
        if (!production || !test) throw new Error(`${service}: blue/green names a rule that does not exist`);
        expect(String(production.inputs.listenerArn)).toContain('EdgeListenerHTTPS443');
        expect(String(test.inputs.listenerArn)).toContain('EdgeTestListener');
        expect(test.inputs.conditions).toEqual(production.inputs.conditions);
        // Both rules start on the primary group and name the alternate at weight 0.
        for (const rule of [production, test]) {
          const forward = (
            rule.inputs.actions as { forward: { targetGroups: { arn: string; weight: number }[] } }[]
          )[0]?.forward;
          expect(forward?.targetGroups).toEqual([
            { arn: lb.targetGroupArn, weight: 100 },
            { arn: advanced.alternateTargetGroupArn, weight: 0 },
          ]);
        }
        expect(lb.targetGroupArn).toMatch(/^arn:aws:elasticloadbalancing:.*:targetgroup\//);
        expect(lb.containerPort).toBe(service === 'Core' ? CORE_PORT : CONTROL_PORT);
      }
    }
    // Every production rule on the HTTPS listener is one ECS shifts: none left on a single group.
    for (const rule of albRules(run)) expect(rule.targetGroups.map((g) => g.weight)).toEqual([100, 0]);
  });

  it('keeps the test listener closed to the internet: 80 and 443 public, 9443 from the VPC only', () => {
    const sg = ofType(runs.production, 'aws:ec2/securityGroup:SecurityGroup').find((g) =>
      g.name.startsWith('Edge'),
    );
    const ingress = sg?.inputs.ingress as { fromPort: number; cidrBlocks: string[] }[];
    expect(ingress.map((r) => r.fromPort).sort((a, b) => a - b)).toEqual([80, 443, 9443]);
    expect(ingress.find((r) => r.fromPort === 9443)?.cidrBlocks).toEqual(['10.0.0.0/16']);
  });
});

describe('sst.config.ts stage rules', () => {
  const strategies = (run: HarnessResult) =>
    ofType(run, 'aws:ecs/service:Service').map(
      (s) =>
        s.inputs.capacityProviderStrategies as { capacityProvider: string; weight: number; base?: number }[],
    );

  it('runs staging on Fargate Spot only', () => {
    for (const strategy of strategies(runs.staging)) {
      const used = strategy.filter((p) => p.weight > 0).map((p) => p.capacityProvider);
      expect(used).toEqual(['FARGATE_SPOT']);
    }
  });

  it('runs production on a base of on-demand Fargate with Spot beside it', () => {
    for (const strategy of strategies(runs.production)) {
      const fargate = strategy.find((p) => p.capacityProvider === 'FARGATE');
      const spot = strategy.find((p) => p.capacityProvider === 'FARGATE_SPOT');
      expect(fargate?.weight).toBeGreaterThan(0);
      expect(fargate?.base).toBeGreaterThanOrEqual(1);
      expect(spot?.weight).toBeGreaterThan(0);
    }
  });

  it('uses managed NAT gateways in production and the cheaper EC2 NAT elsewhere', () => {
    expect(ofType(runs.production, 'aws:ec2/natGateway:NatGateway').length).toBeGreaterThanOrEqual(2);
    expect(ofType(runs.production, 'aws:ec2/instance:Instance')).toEqual([]);
    expect(ofType(runs.staging, 'aws:ec2/natGateway:NatGateway')).toEqual([]);
    const natInstances = ofType(runs.staging, 'aws:ec2/instance:Instance');
    expect(natInstances.length).toBeGreaterThanOrEqual(1);
    for (const i of natInstances) expect(i.inputs.sourceDestCheck).toBe(false);
  });

  it('protects and retains production, and lets other stages be removed', () => {
    expect(runs.production.app).toMatchObject({ protect: true, removal: 'retain', version: '4.17.1' });
    expect(runs.production.outputs._protect).toBe(true);
    const db = one(runs.production, 'aws:rds/instance:Instance', 'DatabaseInstance');
    expect(db.retainOnDelete).toBe(true);
    expect(db.inputs).toMatchObject({ deletionProtection: true, skipFinalSnapshot: false, multiAz: true });
    expect(one(runs.production, 'aws:ec2/vpc:Vpc', 'VpcVpc').retainOnDelete).toBe(true);

    expect(runs.staging.app).toMatchObject({ protect: false, removal: 'remove' });
    expect(runs.staging.outputs._protect).toBe(false);
    expect(one(runs.staging, 'aws:rds/instance:Instance', 'DatabaseInstance').retainOnDelete).toBeFalsy();
  });

  it('keeps logs 30 days in production and less elsewhere', () => {
    const days = (run: HarnessResult) =>
      ofType(run, 'aws:cloudwatch/logGroup:LogGroup').map((g) => Number(g.inputs.retentionInDays));
    expect(days(runs.production).length).toBeGreaterThanOrEqual(4);
    for (const d of days(runs.production)) expect(d).toBe(30);
    for (const d of days(runs.staging)) {
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThan(30);
    }
  });

  it('starts more tasks in production than in staging', () => {
    const desired = (run: HarnessResult, name: string) =>
      Number(one(run, 'aws:ecs/service:Service', `${name}Service`).inputs.desiredCount);
    expect(desired(runs.production, 'Core')).toBeGreaterThanOrEqual(2);
    expect(desired(runs.production, 'Control')).toBeGreaterThanOrEqual(2);
    expect(desired(runs.staging, 'Core')).toBeGreaterThanOrEqual(1);
  });
});
