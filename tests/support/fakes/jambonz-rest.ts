import { randomUUID } from 'node:crypto';

/**
 * A local Jambonz API server speaking the REST call-control shapes of
 * jambonz/jambonz-api-server `lib/routes/api/accounts.js` (docs.jambonz.org, "create a call",
 * "update a call"): Bearer API key, JSON bodies, `201 {"sid"}` on create, 204 (or the feature
 * server's 202) on update, `{"msg"}` error bodies, plain-text 401/404, 480 with no feature server.
 */
export interface RecordedJambonzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when it was not JSON. */
  body: unknown;
  rawBody: string;
}

export interface FakeJambonzCall {
  sid: string;
  status: 'trying' | 'completed';
  request: Record<string, unknown>;
  updates: Record<string, unknown>[];
}

/** Makes the next requests fail: with a status (and optional body), or by never answering. */
export type JambonzFault = { status: number; body?: unknown } | 'hang';

export interface FakeJambonz {
  url: string;
  accountSid: string;
  apiKey: string;
  applicationSids: Set<string>;
  requests: RecordedJambonzRequest[];
  calls: Map<string, FakeJambonzCall>;
  /** Applies to every following Calls request until cleared with `fault(null)`. */
  fault(fault: JambonzFault | null): void;
  stop(): void;
}

export interface FakeJambonzOptions {
  accountSid?: string;
  apiKey?: string;
  applicationSids?: string[];
  /** Status of a successful update: 204 per the docs, 202 as the server relays today. */
  updateStatus?: 202 | 204;
}

const json = (status: number, payload: unknown) => Response.json(payload, { status });
/** Express `res.sendStatus`: the status text as a plain body. */
const sendStatus = (status: number, text: string) =>
  new Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });

const UPDATE_OPERATIONS = [
  'call_hook',
  'child_call_hook',
  'call_status',
  'listen_status',
  'transcribe_status',
  'conf_hold_status',
  'conf_mute_status',
  'mute_status',
  'sip_request',
  'record',
  'tag',
  'dtmf',
];
const SPEECH_FIELDS = [
  'speech_synthesis_vendor',
  'speech_synthesis_language',
  'speech_synthesis_voice',
  'speech_recognizer_vendor',
  'speech_recognizer_language',
];

export function startFakeJambonz(opts: FakeJambonzOptions = {}): FakeJambonz {
  const accountSid = opts.accountSid ?? randomUUID();
  const apiKey = opts.apiKey ?? randomUUID();
  const applicationSids = new Set(opts.applicationSids ?? []);
  const requests: RecordedJambonzRequest[] = [];
  const calls = new Map<string, FakeJambonzCall>();
  const hung: (() => void)[] = [];
  let currentFault: JambonzFault | null = null;

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const { pathname } = new URL(req.url);
      const rawBody = await req.text();
      const isJson = (req.headers.get('content-type') ?? '').startsWith('application/json');
      let body: unknown;
      try {
        body = isJson && rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        return json(400, { msg: 'invalid JSON body' });
      }
      requests.push({
        method: req.method,
        path: pathname,
        headers: Object.fromEntries(req.headers),
        body,
        rawBody,
      });

      // passport-http-bearer answers a missing or unknown token with a bare 401.
      if (req.headers.get('authorization') !== `Bearer ${apiKey}`) return sendStatus(401, 'Unauthorized');

      const m = /^\/v1\/Accounts\/([^/]+)\/Calls(?:\/([^/]+))?$/.exec(pathname);
      if (!m) return sendStatus(404, 'Not Found');
      const [, sid, callSid] = m;

      if (currentFault === 'hang')
        return new Promise<Response>((resolve) => hung.push(() => resolve(sendStatus(503, 'stopped'))));
      if (currentFault) {
        const f = currentFault;
        return f.body === undefined ? sendStatus(f.status, 'Error') : json(f.status, f.body);
      }

      const obj = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
      if (req.method === 'POST' && callSid === undefined) {
        if (sid !== accountSid)
          return json(400, { msg: `unauthorized createCall request for account ${sid}` });
        const invalid = validateCreateCall(obj, applicationSids);
        if (invalid) return json(400, { msg: invalid });
        const call: FakeJambonzCall = { sid: randomUUID(), status: 'trying', request: obj, updates: [] };
        calls.set(call.sid, call);
        return json(201, { sid: call.sid });
      }
      if ((req.method === 'PUT' || req.method === 'POST') && callSid !== undefined) {
        if (sid !== accountSid) return json(400, { msg: `unauthorized request for account ${sid}` });
        const invalid = validateUpdateCall(obj);
        if (invalid) return json(400, { msg: invalid });
        const call = calls.get(callSid);
        if (!call || call.status === 'completed') return sendStatus(404, 'Not Found');
        call.updates.push(obj);
        if (obj.call_status === 'completed' || obj.call_status === 'no-answer') call.status = 'completed';
        return new Response(null, { status: opts.updateStatus ?? 204 });
      }
      return sendStatus(404, 'Not Found');
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    accountSid,
    apiKey,
    applicationSids,
    requests,
    calls,
    fault(f) {
      currentFault = f;
    },
    stop() {
      for (const release of hung.splice(0)) release();
      server.stop(true);
    },
  };
}

/** The api-server's `validateCreateCall` rules, in its order and with its messages. */
function validateCreateCall(obj: Record<string, unknown>, applicationSids: Set<string>): string | null {
  if (!obj.from) return 'missing from parameter';
  if (!validTo(obj.to)) return `missing or invalid to property: ${JSON.stringify(obj.to)}`;
  if (obj.application_sid) {
    if (!applicationSids.has(String(obj.application_sid)))
      return `application_sid not found ${obj.application_sid}`;
    return null;
  }
  if (SPEECH_FIELDS.some((f) => !obj[f])) {
    return `either application_sid or set of ${SPEECH_FIELDS.join(', ')} required`;
  }
  if (!obj.call_hook) return 'either call_hook or application_sid required';
  for (const prop of ['call_hook', 'call_status_hook']) {
    const hook = obj[prop];
    if (hook === undefined) continue;
    const url = typeof hook === 'string' ? hook : (hook as { url?: unknown } | null)?.url;
    if (typeof url !== 'string') return `${prop} must be string or an object containing a url property`;
    if (!/^https?:/.test(url) && !/^wss?:/.test(url)) return `${prop} url be an absolute url`;
  }
  if (obj.tag !== undefined && (typeof obj.tag !== 'object' || obj.tag === null || Array.isArray(obj.tag))) {
    return 'invalid tag data';
  }
  if (obj.timeout !== undefined && !Number.isInteger(obj.timeout)) return 'invalid timeout';
  return null;
}

function validTo(to: unknown): boolean {
  if (!to || typeof to !== 'object') return false;
  const t = to as Record<string, unknown>;
  switch (t.type) {
    case 'phone':
    case 'teams':
      return typeof t.number === 'string';
    case 'user':
      return typeof t.name === 'string';
    case 'sip':
      return typeof t.sipUri === 'string';
    default:
      return false;
  }
}

/** The api-server's `validateUpdateCall`: exactly one operation, each from its allowed values. */
function validateUpdateCall(obj: Record<string, unknown>): string | null {
  const count = UPDATE_OPERATIONS.filter((op) => obj[op]).length;
  if (count === 0) return 'no valid options supplied to updateCall';
  if (count > 1 && !(count === 2 && obj.call_hook && obj.child_call_hook)) {
    return 'multiple options are not allowed in updateCall';
  }
  if (obj.call_status && !['completed', 'no-answer'].includes(String(obj.call_status)))
    return 'invalid call_status';
  if (obj.listen_status && !['pause', 'silence', 'resume'].includes(String(obj.listen_status))) {
    return 'invalid listen_status';
  }
  if (obj.mute_status && !['mute', 'unmute'].includes(String(obj.mute_status))) return 'invalid mute_status';
  return null;
}
