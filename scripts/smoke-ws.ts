/**
 * One real call over the native protocol (docs/realtime-protocol.md) against a deployed stage:
 * open `/realtime/voice` with the server-side key as subprotocol, `start` a call with the smoke
 * agent, and pass when the agent answers (audio or `agent_text`) before the timeout. The
 * deploy workflow runs it after `GET /v1/health`.
 *
 *   BASE_URL=https://api.staging.… REALTIME_API_KEY=… SMOKE_AGENT_ID=agt_… bun run scripts/smoke-ws.ts
 */

export interface SmokeOptions {
  baseUrl: string;
  apiKey: string;
  agentId: string;
  timeoutMs: number;
}

export interface SmokeResult {
  ok: boolean;
  detail: string;
}

/** The WebSocket URL of `/realtime/voice` for an http(s) base URL. */
export function voiceUrl(baseUrl: string): string {
  const url = new URL('/realtime/voice', baseUrl);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  return url.toString();
}

export function smokeCall(opts: SmokeOptions): Promise<SmokeResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(voiceUrl(opts.baseUrl), ['sipai.v1', `sipai.key.${opts.apiKey}`]);
    ws.binaryType = 'arraybuffer';
    let settled = false;
    const finish = (result: SmokeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ t: 'stop', reason: 'smoke_test_done' }));
        ws.close(1000);
      }
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, detail: `no answer from the agent within ${opts.timeoutMs} ms` }),
      opts.timeoutMs,
    );
    ws.onopen = () => {
      const callId = `smoke-${Date.now().toString(36)}`;
      ws.send(
        JSON.stringify({ t: 'start', callId, agentId: opts.agentId, sampleRate: 16000, encoding: 'pcm16' }),
      );
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        finish({
          ok: true,
          detail: `agent audio received (${(event.data as ArrayBuffer).byteLength} bytes)`,
        });
        return;
      }
      let msg: { t?: string; code?: string; message?: string; text?: string; reason?: string };
      try {
        msg = JSON.parse(event.data) as typeof msg;
      } catch {
        return;
      }
      if (msg.t === 'agent_text') finish({ ok: true, detail: `agent said "${msg.text}"` });
      else if (msg.t === 'error') finish({ ok: false, detail: `error ${msg.code}: ${msg.message}` });
      else if (msg.t === 'stop')
        finish({ ok: false, detail: `server ended the call: ${msg.reason ?? 'no reason'}` });
    };
    ws.onerror = () =>
      finish({ ok: false, detail: 'WebSocket error (handshake refused or connection lost)' });
    ws.onclose = (event) =>
      finish({ ok: false, detail: `closed before the agent answered (code ${event.code})` });
  });
}

if (import.meta.main) {
  const need = (name: string) => {
    const value = process.env[name]?.trim();
    if (!value) {
      console.error(`smoke-ws: ${name} is not set`);
      process.exit(2);
    }
    return value;
  };
  const result = await smokeCall({
    baseUrl: need('BASE_URL'),
    apiKey: need('REALTIME_API_KEY'),
    agentId: need('SMOKE_AGENT_ID'),
    timeoutMs: Number(process.env.SMOKE_TIMEOUT_MS ?? 15_000),
  });
  console.log(`smoke-ws: ${result.ok ? 'ok' : 'FAILED'}: ${result.detail}`);
  process.exit(result.ok ? 0 : 1);
}
