/// <reference path="./.sst/platform/config.d.ts" />

/**
 * AWS deployment (SST). Placeholder: the stack itself (VPC, ECS services behind one ALB, the
 * voice-webhook Lambda, Redis, Postgres, secrets) is not built yet — see README, "Not built yet".
 */
export default $config({
  app(input) {
    return {
      name: 'sipai',
      home: 'aws',
      removal: input?.stage === 'production' ? 'retain' : 'remove',
      protect: input?.stage === 'production',
    };
  },
  async run() {
    return {};
  },
});
