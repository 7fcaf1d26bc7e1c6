import { randomBytes } from 'node:crypto';

/**
 * A local api.telnyx.com for Call Control commands (Telnyx API reference, "Call Commands"):
 * `POST /v2/calls/{call_control_id}/actions/{transfer|hangup}`, `Authorization: Bearer <key>`,
 * JSON bodies, `200 {"data": {"result": "ok"}}` on success, and Telnyx's error shape
 * `{"errors": [{"code", "title", "detail"}]}`: 401 for a bad key, 404 for an unknown call,
 * 422 `90018` ("Call has already ended") for a command sent to a call that is over.
 */
export interface RecordedTelnyxRequest {
  method: string;
  /** The path as sent (a `v3:` call_control_id keeps its colon). */
  rawPath: string;
  /** The call_control_id, decoded, when the path is a call command. */
  callControlId?: string;
  action?: string;
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when it was not JSON. */
  body: unknown;
  rawBody: string;
}

export interface FakeTelnyxCall {
  callControlId: string;
  status: 'active' | 'ended';
  /** Accepted commands, in order. */
  actions: { action: string; body: Record<string, unknown> }[];
}

/** Makes requests fail with a status (and Telnyx error code), or by never answering. */
export type TelnyxFault = { status: number; code?: string; title?: string; times?: number } | 'hang';

export interface FakeTelnyx {
  url: string;
  apiKey: string;
  requests: RecordedTelnyxRequest[];
  /** Live calls by call_control_id; add one with `addCall`. */
  calls: Map<string, FakeTelnyxCall>;
  /** A live call Telnyx knows (what a TeXML call's stream `start` names). */
  addCall(callControlId?: string): FakeTelnyxCall;
  /** Applies to the next `times` command requests (every one when absent) until `fault(null)`. */
  fault(fault: TelnyxFault | null): void;
  stop(): void;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const SIP_URI = /^sips?:\S+$/;
const ACTIONS = new Set(['transfer', 'hangup']);

function telnyxError(status: number, code: string, title: string, detail?: string): Response {
  return Response.json({ errors: [{ code, title, ...(detail ? { detail } : {}) }] }, { status });
}

export function startFakeTelnyx(opts: { apiKey?: string } = {}): FakeTelnyx {
  const apiKey = opts.apiKey ?? `KEY${randomBytes(16).toString('hex').toUpperCase()}`;
  const requests: RecordedTelnyxRequest[] = [];
  const calls = new Map<string, FakeTelnyxCall>();
  const hung: (() => void)[] = [];
  let currentFault: TelnyxFault | null = null;

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const rawPath = new URL(req.url).pathname;
      const rawBody = await req.text();
      const isJson = (req.headers.get('content-type') ?? '').startsWith('application/json');
      let body: unknown;
      try {
        body = isJson && rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        return telnyxError(400, '10002', 'Invalid JSON', 'The request body is not valid JSON.');
      }
      const m = /^\/v2\/calls\/([^/]+)\/actions\/([a-z_]+)$/.exec(rawPath);
      const callControlId = m ? decodeURIComponent(m[1]) : undefined;
      requests.push({
        method: req.method,
        rawPath,
        ...(m ? { callControlId, action: m[2] } : {}),
        headers: Object.fromEntries(req.headers),
        body,
        rawBody,
      });

      if (req.headers.get('authorization') !== `Bearer ${apiKey}`) {
        return telnyxError(401, '10009', 'Authentication failed', 'The API key is missing or invalid.');
      }
      if (!m || req.method !== 'POST' || !ACTIONS.has(m[2])) {
        return telnyxError(404, '10005', 'Resource not found', `No route for ${req.method} ${rawPath}.`);
      }
      if (currentFault === 'hang') {
        return new Promise<Response>((resolve) =>
          hung.push(() => resolve(new Response(null, { status: 503 }))),
        );
      }
      if (currentFault) {
        const f = currentFault;
        if (f.times !== undefined) {
          f.times -= 1;
          if (f.times <= 0) currentFault = null;
        }
        return telnyxError(f.status, f.code ?? '10007', f.title ?? 'Unexpected error');
      }
      if (!isJson || typeof body !== 'object' || body === null || Array.isArray(body)) {
        return telnyxError(422, '10015', 'Invalid request', 'The body must be a JSON object.');
      }

      const call = calls.get(callControlId!);
      if (!call) return telnyxError(404, '10005', 'Resource not found', 'Call not found.');
      if (call.status === 'ended') {
        return telnyxError(
          422,
          '90018',
          'Call has already ended',
          'This call is no longer active and can not receive commands.',
        );
      }
      const fields = body as Record<string, unknown>;
      if (m[2] === 'transfer') {
        const to = fields.to;
        if (typeof to !== 'string' || !(E164.test(to) || SIP_URI.test(to))) {
          return telnyxError(
            422,
            '10015',
            'Invalid value for to',
            'to must be an E.164 number or a SIP URI.',
          );
        }
      }
      call.actions.push({ action: m[2], body: fields });
      if (m[2] === 'hangup') call.status = 'ended';
      return Response.json({ data: { result: 'ok' } }, { status: 200 });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    apiKey,
    requests,
    calls,
    addCall(callControlId = `v3:${randomBytes(24).toString('base64url')}`) {
      const call: FakeTelnyxCall = { callControlId, status: 'active', actions: [] };
      calls.set(callControlId, call);
      return call;
    },
    fault(f) {
      currentFault = f === null || f === 'hang' ? f : { ...f };
    },
    stop() {
      for (const release of hung.splice(0)) release();
      server.stop(true);
    },
  };
}
