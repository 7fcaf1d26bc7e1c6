import { mintToken } from '../../../core/auth/index.ts';
import { ApiError } from '../../errors.ts';
import type { AgentService } from '../agents/service.ts';
import { type CreateTokenBody, DEFAULT_REALTIME_TTL_SEC, type RealtimeToken } from './model.ts';

/** Where browsers open the native voice WebSocket; core serves it (core/app.ts `isCorePath`). */
export const REALTIME_VOICE_PATH = '/v1/realtime/voice';

/**
 * Mints the short-lived tokens core's `/realtime/voice` accepts (core/auth/tokens.ts), so a
 * browser joins a call without ever holding an API key.
 */
export class RealtimeService {
  constructor(
    private readonly agents: AgentService,
    private readonly opts: { secret: string | undefined; publicBaseUrl: string },
  ) {}

  async createToken(
    accountId: string,
    body: CreateTokenBody,
    nowSec = Math.floor(Date.now() / 1000),
  ): Promise<RealtimeToken> {
    const { secret } = this.opts;
    if (!secret) {
      throw new ApiError(
        503,
        'realtime_disabled',
        'realtime tokens are disabled: REALTIME_WS_SECRET is not set',
      );
    }
    await this.agents.get(accountId, body.agentId);
    const ttlSec = body.ttlSec ?? DEFAULT_REALTIME_TTL_SEC;
    const token = mintToken(
      secret,
      // The account lets core check the agent is this account's (and namespace the call id).
      { kind: 'realtime', agentId: body.agentId, accountId, sub: body.callId },
      ttlSec,
      nowSec,
    );
    const base = this.opts.publicBaseUrl.replace(/^http/, 'ws');
    return {
      token,
      expiresAt: new Date((nowSec + ttlSec) * 1000).toISOString(),
      url: `${base}${REALTIME_VOICE_PATH}?token=${encodeURIComponent(token)}`,
    };
  }
}
