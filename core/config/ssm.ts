import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';

/** Only names that look like environment variables are taken from SSM. */
const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;

/**
 * Reads every parameter under `prefix` from SSM Parameter Store (recursive, SecureStrings
 * decrypted, all pages) and keys it by the last segment of its name, so `/sipai-prod/REDIS_URL`
 * becomes `REDIS_URL`. Lets production keep secrets out of task definitions.
 */
export async function loadSsmParameters(prefix: string, client: SSMClient): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let nextToken: string | undefined;
  do {
    const page = await client.send(
      new GetParametersByPathCommand({
        Path: prefix,
        Recursive: true,
        WithDecryption: true,
        MaxResults: 10,
        NextToken: nextToken,
      }),
    );
    for (const p of page.Parameters ?? []) {
      const name = p.Name?.slice(p.Name.lastIndexOf('/') + 1);
      if (name && ENV_NAME.test(name) && p.Value !== undefined) out[name] = p.Value;
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return out;
}

/** An SSM client from the environment: region and optional endpoint override. */
export function ssmClientFromEnv(env: Record<string, string | undefined>): SSMClient {
  return new SSMClient({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL_SSM || undefined,
    maxAttempts: 3,
  });
}
