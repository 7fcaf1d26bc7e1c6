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
      BLUE_GREEN,
      HEALTH_CHECKS,
      PATH_RULES,
      SERVICE_PORTS,
      WEBHOOK_HANDLER,
      WEBHOOK_ROUTES,
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
        // 80 and 443 from anywhere; the blue/green test listener only from inside the VPC.
        securityGroup: (args) => {
          args.ingress = [
            {
              fromPort: 80,
              toPort: 80,
              protocol: 'tcp',
              cidrBlocks: ['0.0.0.0/0'],
              ipv6CidrBlocks: ['::/0'],
            },
            {
              fromPort: 443,
              toPort: 443,
              protocol: 'tcp',
              cidrBlocks: ['0.0.0.0/0'],
              ipv6CidrBlocks: ['::/0'],
            },
            {
              fromPort: BLUE_GREEN.testListenerPort,
              toPort: BLUE_GREEN.testListenerPort,
              protocol: 'tcp',
              cidrBlocks: [vpc.nodes.vpc.cidrBlock],
            },
          ];
        },
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
      // Core's CloudWatch metrics carry the stage as their dimension (core/observability/cloudwatch-emf.ts).
      SIPAI_STAGE: $app.stage,
      ...secretEnv,
    };

    const healthCheckOf = (service: ServiceName) => {
      const h = HEALTH_CHECKS[service];
      return {
        path: h.path,
        interval: h.intervalSeconds,
        timeout: h.timeoutSeconds,
        healthyThreshold: h.healthyThreshold,
        unhealthyThreshold: h.unhealthyThreshold,
        matcher: '200',
      };
    };
    const titleOf = (service: ServiceName) => (service === 'core' ? 'Core' : 'Control');

    // Production: ECS blue/green. Each routing rule forwards to a pair of target groups ECS moves
    // traffic between (it owns the weights, hence `ignoreChanges`); a test listener, closed to the
    // internet, sees the new tasks first; ECS lets the role below edit the rules.
    const blueGreenRole = s.production
      ? new aws.iam.Role('EcsBlueGreenRole', {
          name: `${prefix}-ecs-blue-green`,
          assumeRolePolicy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Principal: { Service: 'ecs.amazonaws.com' }, Action: 'sts:AssumeRole' },
            ],
          }),
          managedPolicyArns: ['arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers'],
        })
      : undefined;
    const testListener = s.production
      ? new aws.lb.Listener('EdgeTestListener', {
          loadBalancerArn: alb.nodes.loadBalancer.arn,
          port: BLUE_GREEN.testListenerPort,
          protocol: 'HTTP',
          defaultActions: [
            { type: 'fixed-response', fixedResponse: { contentType: 'text/plain', statusCode: '404' } },
          ],
        })
      : undefined;
    const https = alb.getListener('https', 443);
    /** The blue/green wiring of one service: target-group pairs, rules, ECS load balancer entries. */
    const blueGreenOf = (service: ServiceName) => {
      if (!blueGreenRole || !testListener) return undefined;
      const title = titleOf(service);
      // Broadest rule first: alarms and dashboards read the service's first target group.
      const rules = PATH_RULES.filter((r) => r.service === service).sort((a, b) => b.priority - a.priority);
      const group = (rule: (typeof rules)[number], color: 'Blue' | 'Green') =>
        new aws.lb.TargetGroup(`${title}R${rule.priority}${color}`, {
          namePrefix: color === 'Blue' ? 'blu' : 'grn',
          port: SERVICE_PORTS[service],
          protocol: 'HTTP',
          targetType: 'ip',
          vpcId: vpc.nodes.vpc.id,
          deregistrationDelay: s.drainSeconds,
          healthCheck: healthCheckOf(service),
        });
      return rules.map((rule) => {
        const blue = group(rule, 'Blue');
        const green = group(rule, 'Green');
        const listenerRule = (name: string, listenerArn: $util.Input<string>) =>
          new aws.lb.ListenerRule(
            name,
            {
              listenerArn,
              priority: rule.priority,
              actions: [
                {
                  type: 'forward',
                  forward: {
                    targetGroups: [
                      { arn: blue.arn, weight: 100 },
                      { arn: green.arn, weight: 0 },
                    ],
                  },
                },
              ],
              conditions: [{ pathPattern: { values: [...rule.paths] } }],
            },
            { ignoreChanges: ['actions'] },
          );
        const production = listenerRule(`${title}R${rule.priority}Production`, https.arn);
        const test = listenerRule(`${title}R${rule.priority}Test`, testListener.arn);
        return {
          targetGroupArn: blue.arn,
          containerName: title,
          containerPort: SERVICE_PORTS[service],
          advancedConfiguration: {
            alternateTargetGroupArn: green.arn,
            productionListenerRule: production.arn,
            testListenerRule: test.arn,
            roleArn: blueGreenRole.arn,
          },
        };
      });
    };

    /** What both services share: image, spot mix, logs, ALB attachment, deployment safety. */
    const serviceArgs = (service: ServiceName): sst.aws.ServiceArgs => {
      const port = SERVICE_PORTS[service];
      const health = HEALTH_CHECKS[service];
      const blueGreen = blueGreenOf(service);
      const rules = PATH_RULES.filter((r) => r.service === service);
      return {
        cluster,
        image: { context: '.', dockerfile: `${service}/Dockerfile` },
        capacity: s.capacity,
        link: secrets.map(({ secret }) => secret),
        logging: { retention: s.logRetention },
        wait: s.kind === 'production' || s.kind === 'staging',
        dev: { command: `npm run start:${service}` },
        // Rolling stages attach through SST (one target group, one rule per PATH_RULES entry);
        // production brings its own blue/green pairs (above) and sets them on the ECS service.
        loadBalancer: blueGreen
          ? undefined
          : {
              instance: alb,
              rules: rules.map((r) => ({
                listen: '443/https' as const,
                forward: `${port}/http` as const,
                conditions: { path: r.paths[0] },
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
          // SST's rule takes one path; ours carry up to five, matched as one rule.
          listenerRule: (args, _opts, name) => {
            const rule = rules.find((r) => name.endsWith(`P${r.priority}`));
            if (rule) args.conditions = [{ pathPattern: { values: [...rule.paths] } }];
          },
          service: (args, opts) => {
            // SST turns the circuit breaker on already; spelled out so a change upstream cannot
            // silently drop it. 100 % / 200 %: a deploy starts the new tasks before any old one stops.
            args.deploymentCircuitBreaker = { enable: true, rollback: true };
            args.deploymentMinimumHealthyPercent = 100;
            args.deploymentMaximumPercent = 200;
            args.healthCheckGracePeriodSeconds = 60;
            if (blueGreen) {
              args.loadBalancers = blueGreen;
              args.deploymentConfiguration = {
                strategy: 'BLUE_GREEN',
                bakeTimeInMinutes: String(BLUE_GREEN.bakeTimeMinutes),
              };
              // Any of these alarms firing during the deploy or its bake time rolls it back.
              args.alarms = {
                enable: true,
                rollback: true,
                alarmNames: BLUE_GREEN.rollbackAlarms[service].map((key) => `${prefix}-${key}`),
              };
              // After a deploy ECS swaps which group of each pair is primary: not drift to undo.
              opts.ignoreChanges = [...(opts.ignoreChanges ?? []), 'loadBalancers'];
            } else {
              args.deploymentConfiguration = { strategy: 'ROLLING' };
            }
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
        // Request-count scaling names one target group; blue/green moves traffic between two,
        // so production scales control on CPU alone.
        requestCount: s.production ? false : s.control.requestsPerTarget,
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
    for (const route of WEBHOOK_ROUTES) webhooks.route(route, forwarder.arn);

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
