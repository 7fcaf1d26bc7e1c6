/**
 * Every environment variable the platform reads, in one table: its parser, default and the
 * sentence the README's configuration table shows. `loadConfig` validates against it once at
 * boot; `npm run docs:config` prints the README table from it, and a test keeps them in step.
 */

export interface Setting<T> {
  /** Which process reads it: `core`, `control`, or `all`. */
  scope: 'core' | 'control' | 'all';
  doc: string;
  /** Shown in the README's default column. */
  defaultText: string;
  secret?: boolean;
  /** Turns the raw string (or undefined when unset) into the value, or throws a reason. */
  parse(raw: string | undefined): T;
}

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

function int(opts: { def: number; min: number; max: number; scope: Setting<number>['scope']; doc: string }) {
  return setting<number>({
    scope: opts.scope,
    doc: opts.doc,
    defaultText: String(opts.def),
    parse(raw) {
      if (raw === undefined || raw === '') return opts.def;
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`must be a whole number, got "${raw}"`);
      const n = Number(raw);
      if (n < opts.min || n > opts.max)
        throw new Error(`must be between ${opts.min} and ${opts.max}, got ${n}`);
      return n;
    },
  });
}

function bool(opts: { def: boolean; scope: Setting<boolean>['scope']; doc: string }) {
  return setting<boolean>({
    scope: opts.scope,
    doc: opts.doc,
    defaultText: String(opts.def),
    parse(raw) {
      if (raw === undefined || raw === '') return opts.def;
      const v = raw.trim().toLowerCase();
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      throw new Error(`must be true or false, got "${raw}"`);
    },
  });
}

function oneOf<const V extends string>(opts: {
  values: readonly V[];
  def: V;
  scope: Setting<V>['scope'];
  doc: string;
}) {
  return setting<V>({
    scope: opts.scope,
    doc: `${opts.doc} One of ${opts.values.join(', ')}.`,
    defaultText: opts.def,
    parse(raw) {
      if (raw === undefined || raw === '') return opts.def;
      if (!(opts.values as readonly string[]).includes(raw)) {
        throw new Error(`must be one of ${opts.values.join(', ')}, got "${raw}"`);
      }
      return raw as V;
    },
  });
}

function url(opts: {
  protocols: string[];
  scope: Setting<string | undefined>['scope'];
  doc: string;
  defaultText?: string;
  secret?: boolean;
}) {
  return setting<string | undefined>({
    scope: opts.scope,
    doc: opts.doc,
    defaultText: opts.defaultText ?? '(unset)',
    secret: opts.secret,
    parse(raw) {
      if (raw === undefined || raw === '') return undefined;
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        throw new Error('must be a URL');
      }
      if (!opts.protocols.includes(u.protocol)) {
        throw new Error(`must start with ${opts.protocols.map((p) => `${p}//`).join(' or ')}`);
      }
      return raw.replace(/\/+$/, '');
    },
  });
}

function text<D extends string | undefined = undefined>(opts: {
  scope: Setting<unknown>['scope'];
  doc: string;
  def?: D;
  pattern?: RegExp;
  patternText?: string;
  secret?: boolean;
}): Setting<D extends string ? string : string | undefined> {
  type Out = D extends string ? string : string | undefined;
  return setting<Out>({
    scope: opts.scope,
    doc: opts.doc,
    defaultText: opts.def ?? '(unset)',
    secret: opts.secret,
    parse(raw) {
      if (raw === undefined || raw === '') return opts.def as Out;
      if (opts.pattern && !opts.pattern.test(raw)) throw new Error(`must be ${opts.patternText}`);
      return raw as Out;
    },
  });
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The table. Keys are the environment variable names. */
export const settings = {
  PORT: int({
    def: 3000,
    min: 0,
    max: 65535,
    scope: 'all',
    doc: 'HTTP/WebSocket port. `npm start` defaults to 3000, `core/main.ts` to 8081, `control/main.ts` to 8080; 0 picks a free port.',
  }),
  HOST: text({ scope: 'all', doc: 'Interface to listen on.', def: '0.0.0.0' }),
  PUBLIC_BASE_URL: url({
    protocols: ['http:', 'https:'],
    scope: 'all',
    doc: 'The URL the world reaches this deployment at; builds provider stream URLs and the URL Twilio signs.',
    defaultText: 'http://localhost:$PORT',
  }),
  LOG_LEVEL: oneOf({ values: LOG_LEVELS, def: 'info', scope: 'all', doc: 'Minimum level of the JSON logs.' }),
  REDIS_URL: url({
    protocols: ['redis:', 'rediss:'],
    scope: 'all',
    doc: 'Redis for the Store (leases, call state, event streams, pub/sub). Unset: in-process MemoryStore (single node only).',
    secret: true,
  }),
  STORE_PREFIX: text({
    scope: 'all',
    doc: 'Prefix of every Redis key and channel, so deployments can share a server.',
    def: 'sipai:',
    pattern: /^[A-Za-z0-9:_-]{1,64}$/,
    patternText: '1-64 letters, digits, ":", "_" or "-"',
  }),
  DATABASE_URL: url({
    protocols: ['postgres:', 'postgresql:'],
    scope: 'control',
    doc: "Control plane's PostgreSQL. Unset: embedded PGlite (see PGLITE_DATA_DIR), reached through the same `postgres` driver.",
    secret: true,
  }),
  DATABASE_POOL_MAX: int({
    def: 10,
    min: 1,
    max: 200,
    scope: 'control',
    doc: 'Connections in the Postgres pool.',
  }),
  PGLITE_DATA_DIR: text({
    scope: 'control',
    doc: 'Where embedded PGlite keeps its data when DATABASE_URL is unset; `memory://` keeps nothing.',
    def: '.sipai/pglite',
  }),
  SSM_PREFIX: text({
    scope: 'all',
    doc: 'Load every SSM Parameter Store parameter under this path (decrypted, recursive) before validation; environment variables win over SSM.',
    pattern: /^\/([A-Za-z0-9_.-]+\/)+$/,
    patternText: 'a path that starts and ends with "/", e.g. /sipai-prod/',
  }),
  AWS_REGION: text({ scope: 'all', doc: 'AWS region for SSM (the AWS SDK also reads its usual variables).' }),
  AWS_ENDPOINT_URL_SSM: url({
    protocols: ['http:', 'https:'],
    scope: 'all',
    doc: 'Override of the SSM endpoint (a VPC endpoint, or a local test server).',
  }),
  SHUTDOWN_GRACE_MS: int({
    def: 5000,
    min: 0,
    max: 3_600_000,
    scope: 'all',
    doc: 'On SIGTERM/SIGINT: how long in-flight requests and live calls may finish before the process exits.',
  }),
  REALTIME_API_KEY: text({
    scope: 'core',
    doc: 'Server-side key for `/realtime/voice`: clients offer it as the WebSocket subprotocol `sipai.key.<key>` (next to `sipai.v1`), or alone as the only subprotocol (`wscat -s <key>`).',
    secret: true,
  }),
  REALTIME_WS_SECRET: text({
    scope: 'all',
    doc: 'HMAC secret of the short-lived tokens that admit media WebSockets (provider streams, and browsers on `/realtime/voice?token=`). `npm start` makes a random one per process when unset.',
    secret: true,
    pattern: /^.{16,}$/,
    patternText: 'at least 16 characters',
  }),
  WS_MAX_MESSAGE_BYTES: int({
    def: 65_536,
    min: 1024,
    max: 16_777_216,
    scope: 'core',
    doc: 'Largest WebSocket message accepted; a larger one closes the socket with 1009.',
  }),
  WS_MAX_BUFFERED_BYTES: int({
    def: 1_048_576,
    min: 16_384,
    max: 268_435_456,
    scope: 'core',
    doc: 'Outbound bytes a slow client may leave unread before its socket is closed with 1008.',
  }),
  WS_START_TIMEOUT_MS: int({
    def: 5000,
    min: 100,
    max: 600_000,
    scope: 'core',
    doc: 'A media WebSocket whose call has not started this long after it opened is closed, whatever it sends (1008; 1013 while its start is still being set up).',
  }),
  WS_MAX_MESSAGES_PER_SEC: int({
    def: 100,
    min: 10,
    max: 100_000,
    scope: 'core',
    doc: 'Messages one media WebSocket may send per second, sustained (20 ms audio is 50/s). The excess is dropped unread; a socket dropping more than this many in a second is closed with 1008.',
  }),
  WS_MESSAGE_BURST: int({
    def: 200,
    min: 1,
    max: 1_000_000,
    scope: 'core',
    doc: 'Messages one media WebSocket may send at once above `WS_MAX_MESSAGES_PER_SEC` (network jitter bunches audio frames).',
  }),
  WS_MAX_PENDING_PER_ADDRESS: int({
    def: 64,
    min: 1,
    max: 100_000,
    scope: 'core',
    doc: 'Media WebSockets from one client address that have not sent their `start` yet; more are refused with 429 before the upgrade. Provider media servers and load generators count too: raise it for bursts of call setups from one address.',
  }),
  SESSION_IDLE_TIMEOUT_SEC: int({
    def: 30,
    min: 1,
    max: 86_400,
    scope: 'core',
    doc: 'A call with no inbound media for this long is ended (reason idle_timeout).',
  }),
  SESSION_MAX_DURATION_SEC: int({
    def: 3600,
    min: 1,
    max: 86_400,
    scope: 'core',
    doc: 'Hard cap on a call; an agent config may lower it (reason max_duration).',
  }),
  ADMIN_API_KEY: text({
    scope: 'control',
    doc: 'The admin API key control creates on its first start with an empty database (`sk_live_` and 24-128 letters, digits, "_" or "-"). Unset: a random key is generated and printed once to stdout.',
    secret: true,
    pattern: /^sk_live_[A-Za-z0-9_-]{24,128}$/,
    patternText: 'sk_live_ followed by 24-128 letters, digits, "_" or "-"',
  }),
  API_RATE_LIMIT_PER_MIN: int({
    def: 600,
    min: 1,
    max: 1_000_000,
    scope: 'control',
    doc: 'Requests one API key may make per minute (a fixed window counted in the Store, so it holds across control nodes); past it, 429 with Retry-After.',
  }),
  CALL_TIMELINE_TTL_SEC: int({
    def: 3600,
    min: 1,
    max: 604_800,
    scope: 'control',
    doc: "How long a call's own event stream stays in the Store once the recorder has written the call's end to the database (or closed it as lost); then it is deleted.",
  }),
  METRICS_API_KEY: text({
    scope: 'all',
    doc: 'When set, `GET /metrics` requires `Authorization: Bearer <this key>` (401 otherwise). Unset: /metrics is open, for scrapers inside the network.',
    secret: true,
    pattern: /^\S{16,256}$/,
    patternText: '16-256 characters without spaces',
  }),
  PUBLIC_WS_BASE_URL: url({
    protocols: ['ws:', 'wss:'],
    scope: 'core',
    doc: 'Where providers open media WebSockets; default: PUBLIC_BASE_URL with ws(s)://.',
    defaultText: 'from PUBLIC_BASE_URL',
  }),
  DEFAULT_AGENT_ID: text({
    scope: 'core',
    doc: 'Agent that answers a called number with no route. Unset: unrouted calls are politely rejected. `npm start` uses the demo agent it seeds.',
  }),
  TWILIO_ACCOUNT_SID: text({
    scope: 'all',
    doc: 'Twilio account SID (REST calls: outbound, hang-up, transfer).',
  }),
  TWILIO_AUTH_TOKEN: text({
    scope: 'all',
    doc: 'Twilio auth token: verifies X-Twilio-Signature and authenticates REST calls. Comma-separated while rotating.',
    secret: true,
  }),
  TWILIO_API_BASE_URL: url({
    protocols: ['http:', 'https:'],
    scope: 'all',
    doc: 'Twilio REST API base for outbound calls and transfers (a regional edge, or a local test server).',
    defaultText: 'https://api.twilio.com',
  }),
  JAMBONZ_WEBHOOK_SECRET: text({
    scope: 'core',
    doc: 'Verifies Jambonz-Signature on Jambonz webhooks. Comma-separated while rotating.',
    secret: true,
  }),
  JAMBONZ_ACCOUNT_SID: text({
    scope: 'all',
    doc: 'Jambonz account SID for REST calls (outbound, live call control).',
  }),
  JAMBONZ_API_KEY: text({ scope: 'all', doc: 'Jambonz API key (Bearer) for REST calls.', secret: true }),
  JAMBONZ_APPLICATION_SID: text({
    scope: 'control',
    doc: "Jambonz application that outbound calls run: Jambonz fetches the call's verbs from that application's call hook (point it at `/telephony/jambonz/call`). Unset: each call names our call hook itself.",
  }),
  JAMBONZ_API_BASE_URL: url({
    protocols: ['http:', 'https:'],
    scope: 'all',
    doc: 'Jambonz REST API base, e.g. https://jambonz.example.com/api.',
  }),
  TELNYX_PUBLIC_KEY: text({
    scope: 'core',
    doc: 'Telnyx account public key (base64, from the portal): verifies telnyx-signature-ed25519 on TeXML webhooks.',
  }),
  TELNYX_API_KEY: text({
    scope: 'core',
    doc: 'Telnyx API key (Bearer) for Call Control: transfers, and hanging up a Telnyx call when its session ends (unset: such calls stay up until the TeXML `<Pause>` runs out, and core warns at boot).',
    secret: true,
  }),
  TELNYX_API_BASE_URL: url({
    protocols: ['http:', 'https:'],
    scope: 'core',
    doc: 'Telnyx REST API base for Call Control (a local test server in tests).',
    defaultText: 'https://api.telnyx.com',
  }),
  TELEPHONY_VERIFY_SIGNATURES: bool({
    def: true,
    scope: 'core',
    doc: 'Verify provider webhook signatures. Setting it to false logs a warning at boot; never do it in production.',
  }),
  TELEPHONY_FORWARDER_SECRET: text({
    scope: 'core',
    doc: 'Shared with the webhook Lambda, which sends it with every forwarded webhook: only then does core check a Twilio signature against the forwarded public URL (`x-sipai-original-url`). Unset: that header is ignored.',
    pattern: /^\S{16,256}$/,
    patternText: '16-256 characters without spaces',
    secret: true,
  }),
  TELEPHONY_SHARED_SECRET: text({
    scope: 'all',
    doc: "When set, every `/telephony/*` HTTP request (webhooks, status callbacks, the capacity report; media streams keep their signed tokens) must also carry this token, as header `X-Telephony-Secret` or as the password of Basic auth (checked in constant time, on top of provider signatures; 401 with a Basic challenge otherwise). Exception: Telnyx webhooks, which cannot carry it, pass on their Ed25519 signature alone while `TELEPHONY_VERIFY_SIGNATURES` is on. Outbound calls carry it: control gives Twilio `Url` and `StatusCallback` as `https://sipai:<secret>@…` (Twilio answers the challenge with Basic auth; its signature verifies with or without the credentials in the URL) and Jambonz call and status hooks with it as their Basic auth, as core does with a Jambonz transfer's hook. URLs set by hand in Twilio or Jambonz need the same (docs/providers.md). Letters, digits and `-._~` only, as it rides in URLs. Unset: not required.",
    pattern: /^[A-Za-z0-9._~-]{16,256}$/,
    patternText: '16-256 characters, each a letter, digit or one of -._~ (it rides in provider URLs)',
    secret: true,
  }),
  TELEPHONY_ENDED_CALL_TTL_SEC: int({
    def: 86_400,
    min: 60,
    max: 604_800,
    scope: 'core',
    doc: "How long core remembers an ended call (and each provider delivery it handled): a call webhook replayed or retried within it is politely refused, a repeated status callback reported once. Cover the providers' retry window.",
  }),
  TELEPHONY_GLOBAL_MAX_CONCURRENCY: int({
    def: 10_000,
    min: 1,
    max: 10_000_000,
    scope: 'all',
    doc: 'Live calls admitted at once across every core node (a lease in the Store).',
  }),
  TELEPHONY_OUTBOUND_MAX_CONCURRENCY: setting<number | undefined>({
    scope: 'control',
    doc: 'Live calls the API may have originated at once across the deployment (`POST /v1/calls` and campaigns together, a lease in the Store); past it, the call is refused with 429 naming this limit and a campaign waits. Unset: only the other limits apply.',
    defaultText: '(unset)',
    parse(raw) {
      if (raw === undefined || raw.trim() === '') return undefined;
      if (!/^\d+$/.test(raw.trim())) throw new Error(`must be a whole number, got "${raw}"`);
      const n = Number(raw);
      if (n < 1 || n > 10_000_000) throw new Error(`must be between 1 and 10000000, got ${n}`);
      return n;
    },
  }),
  TELEPHONY_PER_CAMPAIGN_MAX_CONCURRENCY: int({
    def: 100,
    min: 1,
    max: 1_000_000,
    scope: 'all',
    doc: 'Live calls per campaign unless the campaign sets its own limit.',
  }),
  TELEPHONY_SEMAPHORE_TTL_SEC: int({
    def: 600,
    min: 2,
    max: 86_400,
    scope: 'all',
    doc: "Lease lifetime; renewed every third of it while the call lives, so a crashed node's calls free their slots after at most this long.",
  }),
  CORE_API_KEY: text({
    scope: 'core',
    doc: "Bearer key for core's operator endpoints (`GET /telephony/capacity`). Unset: those endpoints answer 404.",
    secret: true,
  }),
  OPENAI_API_KEY: text({
    scope: 'all',
    doc: 'OpenAI (or compatible) key for the `openai` LLM and voice. Unset: agents using them are reported not ready.',
    secret: true,
  }),
  OPENAI_BASE_URL: url({
    protocols: ['http:', 'https:'],
    scope: 'all',
    doc: 'Base of the OpenAI-compatible API, as the `openai` SDK takes it (`/chat/completions`, `/audio/speech` appended).',
    defaultText: 'https://api.openai.com/v1',
  }),
  DEEPGRAM_API_KEY: text({
    scope: 'all',
    doc: 'Deepgram key for the `deepgram` live speech-to-text. Unset: agents using it are reported not ready.',
    secret: true,
  }),
  DEEPGRAM_BASE_URL: url({
    protocols: ['ws:', 'wss:'],
    scope: 'all',
    doc: 'Base of Deepgram live STT (`/v1/listen` appended).',
    defaultText: 'wss://api.deepgram.com',
  }),
  ELEVENLABS_API_KEY: text({
    scope: 'all',
    doc: 'ElevenLabs key for the `elevenlabs` voice. Unset: agents using it are reported not ready.',
    secret: true,
  }),
  ELEVENLABS_BASE_URL: url({
    protocols: ['ws:', 'wss:'],
    scope: 'all',
    doc: 'Base of ElevenLabs streaming TTS (`/v1/text-to-speech/…` appended).',
    defaultText: 'wss://api.elevenlabs.io',
  }),
  WEBHOOK_SECRET: text({
    scope: 'all',
    doc: "Signs requests to agents' tool endpoints (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`), and is the default signing secret of customer webhooks (events; not built yet). Unset: tool calls are unsigned.",
    secret: true,
  }),
  WEBHOOK_ALLOW_PRIVATE_URLS: bool({
    def: false,
    scope: 'control',
    doc: 'Let customer webhook endpoints resolve to private, loopback or link-local addresses (checked when saved and at every delivery). Off in production, so a tenant cannot make the platform call its own network; `npm start` turns it on for local receivers.',
  }),
  WEBHOOK_TIMEOUT_MS: int({
    def: 10_000,
    min: 100,
    max: 120_000,
    scope: 'control',
    doc: 'How long a webhook receiver has to answer one delivery attempt; no answer counts as a failed attempt and is retried.',
  }),
  WEBHOOK_MAX_ATTEMPTS: int({
    def: 8,
    min: 1,
    max: 50,
    scope: 'control',
    doc: 'Attempts per webhook delivery (retries back off exponentially with jitter, from 5 s to an hour) before it is marked failed; failed deliveries can be replayed.',
  }),
  WEBHOOK_DISABLE_AFTER_FAILURES: int({
    def: 20,
    min: 1,
    max: 100_000,
    scope: 'control',
    doc: 'Deliveries to one endpoint that fail for good in a row before the endpoint is disabled, with the reason on it.',
  }),
} satisfies Record<string, Setting<unknown>>;

export type Settings = typeof settings;
export type SettingName = keyof Settings;

/** The validated configuration: one frozen object, keyed by variable name. */
export type Config = Readonly<
  { [K in SettingName]: ReturnType<Settings[K]['parse']> } & {
    /** Always set after validation: defaults to `http://localhost:$PORT`. */
    PUBLIC_BASE_URL: string;
  }
>;
