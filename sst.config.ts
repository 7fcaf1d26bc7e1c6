/// <reference path="./.sst/platform/config.d.ts" />

/**
 * The AWS stack (SST 4, Pulumi underneath): one VPC, one ECS cluster running `Core` and
 * `Control` on Fargate behind one shared ALB, the voice-webhook Lambda behind API Gateway,
 * Valkey for the Store, Postgres for control, secrets, alarms. What differs per stage lives in
 * `infra/stage.ts` as plain data; the routing table and health checks in `infra/routes.ts`.
 * docs/RUNBOOK.md covers first deploy, rollback, alarms and parking a stage.
 */
export default $config({
  // SST refuses top-level imports in this file (it evaluates `app` before providers exist):
  // everything from infra/ comes in through dynamic imports.
  async app(input) {
    const { AWS_PROVIDER_VERSION, AWS_REGION, SST_VERSION, stageSettings } = await import('./infra/stage.ts');
    const s = stageSettings(input?.stage ?? 'dev');
    return {
      name: 'sipai',
      home: 'aws',
      version: SST_VERSION,
      removal: s.removal,
      protect: s.protect,
      providers: { aws: { region: AWS_REGION, version: AWS_PROVIDER_VERSION } },
    };
  },
  async run() {
    const { alarmSpecs, SESSIONS_METRIC } = await import('./infra/alarms.ts');
    const { databaseUrl, redisUrl } = await import('./infra/connection-urls.ts');
    const {
      ALB_IDLE_TIMEOUT_SECONDS,
      HEALTH_CHECKS,
      PATH_RULES,
      SERVICE_PORTS,
      WEBHOOK_HANDLER,
      WEBHOOK_ROUTE,
      WEBHOOK_RUNTIME,
    } = await import('./infra/routes.ts');
    const { SECRETS } = await import('./infra/secrets.ts');
    const { AWS_REGION, STOP_TIMEOUT_SECONDS, stageDomains, stageSettings } = await import(
      './infra/stage.ts'
    );
    type ServiceName = import('./infra/routes.ts').ServiceName;
    type AlarmSubject = import('./infra/alarms.ts').AlarmSubject;

    const s = stageSettings($app.stage);
    const domains = stageDomains($app.stage, process.env.SIPAI_DOMAIN);
    const apiUrl = `https://${domains.api}`;
    const prefix = `${$app.name}-${$app.stage}`;

    const vpc = new sst.aws.Vpc('Vpc', { nat: s.nat, az: s.az });
    const cluster = new sst.aws.Cluster('Cluster', {
      vpc,
      transform: {
        cluster: (args) => {
          args.settings = [{ name: 'containerInsights', value: s.production ? 'enabled' : 'disabled' }];
        },
      },
    });

    // Valkey, cluster mode off: the Store's lease scripts touch the global, campaign and agent
    // keys in one Lua call, which cluster mode rejects (CROSSSLOT). In-transit TLS is on.
    const redis = new sst.aws.Redis('Store', {
      vpc,
      engine: 'valkey',
      instance: s.redisInstance,
      cluster: false,
      transform: s.production
        ? { cluster: { numCacheClusters: 2, automaticFailoverEnabled: true, multiAzEnabled: true } }
        : undefined,
    });
    const postgres = new sst.aws.Postgres('Database', {
      vpc,
      instance: s.postgres.instance,
      storage: s.postgres.storage,
      multiAz: s.postgres.multiAz,
      transform: s.production
        ? {
            instance: {
              deletionProtection: true,
              skipFinalSnapshot: false,
              finalSnapshotIdentifier: `${prefix}-final`,
              backupRetentionPeriod: 14,
            },
          }
        : undefined,
    });
    // ElastiCache with in-transit encryption (SST's default for Redis): rediss://.
    const redisEnv = $resolve({
      host: redis.host,
      port: redis.port,
      username: redis.username,
      password: redis.password,
    }).apply((r) => redisUrl({ ...r, password: r.password ?? '', tls: true }));
    const databaseEnv = $resolve({
      host: postgres.host,
      port: postgres.port,
      username: postgres.username,
      password: postgres.password,
      database: postgres.database,
    }).apply((p) => databaseUrl(p));

    // A vendor's key is optional (a placeholder of ""): only the vendors a stage's agents use need one.
    const secrets = SECRETS.map((spec) => ({
      spec,
      secret: spec.optional ? new sst.Secret(spec.name, '') : new sst.Secret(spec.name),
    }));
    const secretEnv = Object.fromEntries(secrets.map(({ spec, secret }) => [spec.env, secret.value]));

    const alb = new sst.aws.Alb('Edge', {
      vpc,
      domain: domains.api,
      listeners: [
        { port: 80, protocol: 'http' },
        { port: 443, protocol: 'https' },
      ],
      transform: {
        loadBalancer: { idleTimeout: ALB_IDLE_TIMEOUT_SECONDS, dropInvalidHeaderFields: true },
        listener: (args) => {
          if (args.protocol === 'HTTP') {
            // Plain HTTP only ever redirects; every rule lives on the HTTPS listener.
            args.defaultActions = [
              { type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } },
            ];
          } else {
            args.sslPolicy = 'ELBSecurityPolicy-TLS13-1-2-2021-06';
          }
        },
      },
    });

    const shared = {
      PUBLIC_BASE_URL: apiUrl,
      HOST: '0.0.0.0',
      LOG_LEVEL: s.logLevel,
      REDIS_URL: redisEnv,
      SHUTDOWN_GRACE_MS: String(s.shutdownGraceMs),
      TELEPHONY_GLOBAL_MAX_CONCURRENCY: String(s.globalMaxConcurrency),
      AWS_REGION,
      ...secretEnv,
    };

    /** What both services share: image, spot mix, logs, ALB attachment, deployment safety. */
    const serviceArgs = (service: ServiceName): sst.aws.ServiceArgs => {
      const port = SERVICE_PORTS[service];
      const health = HEALTH_CHECKS[service];
      return {
        cluster,
        image: { context: '.', dockerfile: `${service}/Dockerfile` },
        capacity: s.capacity,
        link: secrets.map(({ secret }) => secret),
        logging: { retention: s.logRetention },
        wait: s.kind === 'production' || s.kind === 'staging',
        dev: { command: `npm run start:${service}` },
        loadBalancer: {
          instance: alb,
          rules: PATH_RULES.filter((r) => r.service === service).map((r) => ({
            listen: '443/https' as const,
            forward: `${port}/http` as const,
            conditions: { path: r.path },
            priority: r.priority,
          })),
          health: {
            [`${port}/http` as const]: {
              path: health.path,
              interval: `${health.intervalSeconds} seconds` as const,
              timeout: `${health.timeoutSeconds} seconds` as const,
              healthyThreshold: health.healthyThreshold,
              unhealthyThreshold: health.unhealthyThreshold,
            },
          },
        },
        transform: {
          // SST turns the circuit breaker on already; spelled out so a change upstream cannot
          // silently drop it. 100 % / 200 %: a deploy starts the new tasks before any old one stops.
          service: (args) => {
            args.deploymentCircuitBreaker = { enable: true, rollback: true };
            args.deploymentMinimumHealthyPercent = 100;
            args.deploymentMaximumPercent = 200;
            args.healthCheckGracePeriodSeconds = 60;
          },
          // A leaving task keeps its open calls for the drain window before ECS sends SIGTERM;
          // SHUTDOWN_GRACE_MS then covers what is left, within the container's stop timeout.
          target: (args) => {
            args.deregistrationDelay = s.drainSeconds;
          },
          taskDefinition: (args) => {
            args.containerDefinitions = $output(args.containerDefinitions).apply((json) =>
              JSON.stringify(
                (JSON.parse(json) as Record<string, unknown>[]).map((c) => ({
                  ...c,
                  stopTimeout: STOP_TIMEOUT_SECONDS,
                })),
              ),
            );
          },
        },
      };
    };

    const core = new sst.aws.Service('Core', {
      ...serviceArgs('core'),
      cpu: s.core.cpu,
      memory: s.core.memory,
      environment: { ...shared, PORT: String(SERVICE_PORTS.core) },
      scaling: {
        min: s.core.min,
        max: s.core.max,
        cpuUtilization: s.core.cpuTarget,
        memoryUtilization: false,
      },
    });
    const control = new sst.aws.Service('Control', {
      ...serviceArgs('control'),
      cpu: s.control.cpu,
      memory: s.control.memory,
      environment: { ...shared, PORT: String(SERVICE_PORTS.control), DATABASE_URL: databaseEnv },
      scaling: {
        min: s.control.min,
        max: s.control.max,
        cpuUtilization: s.control.cpuTarget,
        memoryUtilization: false,
        requestCount: s.control.requestsPerTarget,
      },
    });

    // Core also scales on live calls per task (SESSIONS_METRIC, Average over the tasks).
    new aws.appautoscaling.Policy('CoreSessionsScaling', {
      name: `${prefix}-core-sessions`,
      policyType: 'TargetTrackingScaling',
      resourceId: core.nodes.autoScalingTarget.resourceId,
      scalableDimension: core.nodes.autoScalingTarget.scalableDimension,
      serviceNamespace: core.nodes.autoScalingTarget.serviceNamespace,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: s.core.sessionsPerTaskTarget,
        scaleOutCooldown: 60,
        scaleInCooldown: 300,
        customizedMetricSpecification: {
          namespace: SESSIONS_METRIC.namespace,
          metricName: SESSIONS_METRIC.name,
          statistic: 'Average',
          dimensions: [{ name: SESSIONS_METRIC.stageDimension, value: $app.stage }],
        },
      },
    });

    // Provider webhooks: API Gateway → the forwarder Lambda → the ALB's `/telephony/*` rule →
    // core. The ALB only routes to tasks that pass their health check, which DNS service
    // discovery inside the VPC could not promise between its TTLs.
    const forwarder = new sst.aws.Function('VoiceWebhookForwarder', {
      handler: WEBHOOK_HANDLER,
      runtime: WEBHOOK_RUNTIME,
      timeout: '10 seconds',
      memory: '256 MB',
      environment: {
        CORE_INTERNAL_URL: apiUrl,
        FORWARD_TIMEOUT_MS: '8000',
        // Core trusts the forwarded original URL only with this secret (core/lambda.ts).
        TELEPHONY_FORWARDER_SECRET: secretEnv.TELEPHONY_FORWARDER_SECRET!,
      },
      link: secrets
        .filter(({ spec }) => spec.env === 'TELEPHONY_FORWARDER_SECRET')
        .map(({ secret }) => secret),
      logging: { retention: s.logRetention },
    });
    const webhooks = new sst.aws.ApiGatewayV2('VoiceWebhooks', {
      domain: domains.hooks,
      accessLog: { retention: s.logRetention },
    });
    webhooks.route(WEBHOOK_ROUTE, forwarder.arn);

    const alarmTopic = new aws.sns.Topic('Alarms', { name: `${prefix}-alarms` });
    const arnSuffix = (arn: string | undefined) => (arn ?? '').split(':').slice(5).join(':');
    const targetGroupOf = (service: sst.aws.Service) =>
      service.nodes.service
        .apply((svc) => svc.loadBalancers)
        .apply((lbs) => arnSuffix(lbs?.[0]?.targetGroupArn));
    const loadBalancer = alb.nodes.loadBalancer.arnSuffix;
    const clusterName = cluster.nodes.cluster.name;
    const dimensions: Record<AlarmSubject, Record<string, $util.Input<string>>> = {
      alb: { LoadBalancer: loadBalancer },
      'core-target': { LoadBalancer: loadBalancer, TargetGroup: targetGroupOf(core) },
      'control-target': { LoadBalancer: loadBalancer, TargetGroup: targetGroupOf(control) },
      'core-service': { ClusterName: clusterName, ServiceName: core.nodes.service.name },
      'control-service': { ClusterName: clusterName, ServiceName: control.nodes.service.name },
      stage: { [SESSIONS_METRIC.stageDimension]: $app.stage },
    };
    for (const a of alarmSpecs(s)) {
      new aws.cloudwatch.MetricAlarm(`Alarm-${a.key}`, {
        name: `${prefix}-${a.key}`,
        alarmDescription: a.description,
        namespace: a.namespace,
        metricName: a.metricName,
        statistic: a.statistic,
        period: a.periodSeconds,
        evaluationPeriods: a.evaluationPeriods,
        threshold: a.threshold,
        comparisonOperator: a.comparison,
        treatMissingData: a.treatMissingData,
        dimensions: dimensions[a.subject],
        alarmActions: [alarmTopic.arn],
        okActions: [alarmTopic.arn],
      });
    }

    return {
      api: apiUrl,
      health: `${apiUrl}/v1/health`,
      realtimeVoice: `wss://${domains.api}/realtime/voice`,
      webhooks: webhooks.url,
      alarmTopic: alarmTopic.arn,
      albDnsName: alb.dnsName,
    };
  },
});
