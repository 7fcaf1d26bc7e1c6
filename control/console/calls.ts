import { latencySummary, type RecordedEvent, transcriptOf } from '../modules/calls/timeline.ts';
import { allAgents } from './agents.ts';
import { type ApiFailure, api, eventStream, messageOf, type Page } from './api.ts';
import { duration, fill, h, ms, when } from './dom.ts';
import { field, notice, say, select } from './forms.ts';
import { latencyChart } from './talk.ts';

/**
 * `#/calls` and `#/calls/<id>`: recent calls with filters, and one call's timeline, transcript
 * and latency. Both follow the API's call streams (`GET /v1/calls/events`, `…/{id}/events`,
 * server-sent events) while they are on screen, so live calls move without a reload and
 * without polling; a stream that drops is opened again, and the view loaded once more.
 */

interface Call {
  id: string;
  provider: string | null;
  agentId: string | null;
  direction: string | null;
  from: string | null;
  to: string | null;
  status: string;
  startedAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  endReason: string | null;
}

interface TimelineEvent {
  type: string;
  at: string;
  tMs: number | null;
  data: Record<string, unknown> | null;
}

interface Stats {
  count: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

const LIVE = new Set(['queued', 'ringing', 'in-progress']);
const STATUSES = [
  'queued',
  'ringing',
  'in-progress',
  'completed',
  'failed',
  'busy',
  'no-answer',
  'canceled',
  'refused',
];
/** Rows the list shows, newest first. */
const LIST_LIMIT = 50;

/** How far along a call is: a status never goes back (an older copy arriving late is ignored). */
function progress(status: string): number {
  const live = ['queued', 'ringing', 'in-progress'].indexOf(status);
  return live >= 0 ? live : 3;
}

/** Newest first, as the API lists them. */
function newestFirst(a: Call, b: Call): number {
  return b.startedAt.localeCompare(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function statusBadge(status: string): HTMLElement {
  const cls = LIVE.has(status) ? 'badge live' : status === 'completed' ? 'badge' : 'badge bad';
  return h('span', { class: cls }, status);
}

/** That the live updates stopped, and when they try again (nothing when they never will). */
function pausedMessage(failure: ApiFailure, retryInMs: number | null): string {
  const again = retryInMs === null ? '' : ` Reconnecting in ${Math.ceil(retryInMs / 1000)} s.`;
  return `Live updates paused: ${failure.message.replace(/\.$/, '')}.${again}`;
}

/**
 * A view's notice: why the list could not load, else why live updates are paused, else nothing.
 * `set` changes one of the two and shows what is left.
 */
function problems(status: HTMLElement) {
  const current: { load: string | null; stream: string | null } = { load: null, stream: null };
  return (kind: 'load' | 'stream', message: string | null) => {
    current[kind] = message;
    const shown = current.load ?? current.stream;
    if (shown) say(status, 'error', shown);
    else {
      status.className = 'notice';
      status.replaceChildren();
    }
  };
}

/** Every second while the view is on screen, `tick` (a live call's duration grows). */
function everySecond(tick: () => void, isCurrent: () => boolean): void {
  const timer = window.setInterval(() => {
    if (isCurrent()) tick();
    else window.clearInterval(timer);
  }, 1000);
}

/** `#/calls`. `isCurrent` is false once the user has left the view. */
export async function callsView(main: HTMLElement, isCurrent: () => boolean): Promise<void> {
  const agents = await allAgents();
  const names = new Map(agents.map((a) => [a.id, a.name]));
  const statusFilter = select([['', 'any'], ...STATUSES.map((s): [string, string] => [s, s])]);
  const directionFilter = select([
    ['', 'any'],
    ['inbound', 'inbound'],
    ['outbound', 'outbound'],
  ]);
  const agentFilter = select([['', 'any'], ...agents.map((a): [string, string] => [a.id, a.name])]);
  const status = notice();
  const updated = h('p', { class: 'muted', 'aria-live': 'off' });
  const body = h('tbody');
  fill(
    main,
    h('h1', {}, 'Calls'),
    h(
      'form',
      { class: 'row card', 'aria-label': 'Filters' },
      field({ field: 'status', label: 'Status' }, statusFilter),
      field({ field: 'direction', label: 'Direction' }, directionFilter),
      field({ field: 'agentId', label: 'Agent' }, agentFilter),
    ),
    status,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'calls-table' },
        h('caption', { class: 'sr-only' }, 'Recent calls, newest first'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Started', 'Status', 'Reason', 'Direction', 'Duration', 'Agent', 'From → to'].map((c) =>
              h('th', { scope: 'col' }, c),
            ),
          ),
        ),
        body,
      ),
    ),
    updated,
  );
  /** The calls shown, by id. */
  let shown = new Map<string, Call>();
  /** Lists asked for since the view opened; only the latest one's answer is shown. */
  let asked = 0;
  const problem = problems(status);
  let changedAt = new Date();
  const matches = (c: Call) =>
    (!statusFilter.value || c.status === statusFilter.value) &&
    (!directionFilter.value || c.direction === directionFilter.value) &&
    (!agentFilter.value || c.agentId === agentFilter.value);
  const durations = new Map<string, HTMLElement>();
  const render = () => {
    const calls = [...shown.values()].sort(newestFirst).slice(0, LIST_LIMIT);
    shown = new Map(calls.map((c) => [c.id, c]));
    durations.clear();
    body.replaceChildren(
      ...calls.map((c) => {
        const length = h('td', { class: 'num' }, duration(c.answeredAt ?? c.startedAt, c.endedAt));
        if (LIVE.has(c.status)) durations.set(c.id, length);
        return h(
          'tr',
          { 'data-call-id': c.id, 'data-status': c.status },
          h('td', {}, h('a', { href: `#/calls/${encodeURIComponent(c.id)}` }, when(c.startedAt))),
          h('td', {}, statusBadge(c.status)),
          h('td', {}, c.endReason ?? '—'),
          h('td', {}, c.direction ?? '—'),
          length,
          h('td', {}, c.agentId ? (names.get(c.agentId) ?? h('code', {}, c.agentId)) : '—'),
          h('td', {}, `${c.from ?? '—'} → ${c.to ?? '—'}`),
        );
      }),
    );
    if (calls.length === 0) {
      body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No calls match.')));
    }
    const live = calls.filter((c) => LIVE.has(c.status)).length;
    updated.textContent = `${live > 0 ? `${live} live · ` : ''}updated ${changedAt.toLocaleTimeString()}`;
  };
  /** A call as the stream (or a list) has it now, unless what is shown is further along. */
  const apply = (call: Call) => {
    const mine = shown.get(call.id);
    if (mine && progress(call.status) < progress(mine.status)) return;
    if (matches(call)) shown.set(call.id, call);
    else shown.delete(call.id);
  };
  const query = () => {
    const q = new URLSearchParams({ limit: String(LIST_LIMIT) });
    if (statusFilter.value) q.set('status', statusFilter.value);
    if (directionFilter.value) q.set('direction', directionFilter.value);
    if (agentFilter.value) q.set('agentId', agentFilter.value);
    return q.toString();
  };
  /** Loads the first page: on open, on a filter change, and after the stream was down. */
  const refresh = async (): Promise<void> => {
    const mine = ++asked;
    try {
      const page = await api<Page<Call>>('GET', `/calls?${query()}`);
      if (!isCurrent() || mine !== asked) return;
      const before = shown;
      // Changes the stream brought while the page was on its way stay.
      shown = new Map();
      for (const c of page.data) {
        const streamed = before.get(c.id);
        shown.set(c.id, streamed && progress(streamed.status) > progress(c.status) ? streamed : c);
      }
      problem('load', null);
      changedAt = new Date();
      render();
    } catch (err) {
      if (isCurrent() && mine === asked) problem('load', `Could not load calls: ${messageOf(err)}`);
    }
  };
  for (const f of [statusFilter, directionFilter, agentFilter])
    f.addEventListener('change', () => void refresh());
  eventStream(
    '/calls/events',
    {
      open: () => {
        problem('stream', null);
        void refresh();
      },
      event: (e) => {
        if (e.event === 'reset') return void refresh();
        if (e.event !== 'call') return;
        apply(e.data as Call);
        changedAt = new Date();
        render();
      },
      down: (failure, retryInMs) => {
        if (!isCurrent() || failure.status === 401) return;
        problem('stream', pausedMessage(failure, retryInMs));
        // Without the stream the list is still worth showing, once.
        if (asked === 0) void refresh();
      },
    },
    isCurrent,
  );
  everySecond(() => {
    for (const [id, cell] of durations) {
      const c = shown.get(id);
      if (c) cell.textContent = duration(c.answeredAt ?? c.startedAt, c.endedAt);
    }
  }, isCurrent);
}

function dataSummary(data: Record<string, unknown> | null): string {
  if (!data) return '';
  return Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
}

const LATENCY_ROWS: [string, string][] = [
  ['endpointingMs', 'End of turn (silence)'],
  ['sttMs', 'Speech to text'],
  ['llmFirstTokenMs', 'First reply text'],
  ['ttsFirstAudioMs', 'First synthesised audio'],
  ['turnMs', 'End of speech → agent audio'],
];

/** Oldest first, as the API orders a timeline: by time, then time into the call. */
function earlier(a: TimelineEvent, b: TimelineEvent): number {
  return a.at.localeCompare(b.at) || (a.tMs ?? -1) - (b.tMs ?? -1);
}

/** `#/calls/<id>`. */
export async function callView(main: HTMLElement, id: string, isCurrent: () => boolean): Promise<void> {
  const status = notice();
  const facts = h('dl', { class: 'facts' });
  const transcript = h('ol', { class: 'transcript full', 'aria-label': 'Transcript' });
  const latency = h('div');
  const timeline = h('ol', { class: 'timeline', id: 'timeline', 'aria-label': 'Timeline' });
  const title = h('h1', {}, 'Call');
  fill(
    main,
    h('p', {}, h('a', { href: '#/calls' }, '← Calls')),
    title,
    status,
    h('div', { class: 'card' }, facts),
    h(
      'div',
      { class: 'talk-grid' },
      h('div', { class: 'card' }, h('h2', {}, 'Timeline'), timeline),
      h(
        'div',
        {},
        h('div', { class: 'card' }, h('h2', {}, 'Transcript'), transcript),
        h('div', { class: 'card' }, h('h2', {}, 'Latency'), latency),
      ),
    ),
  );
  const agents = new Map((await allAgents()).map((a) => [a.id, a.name]));
  const problem = problems(status);
  let call: Call | null = null;
  let events: TimelineEvent[] = [];
  const showFacts = () => {
    if (!call) return;
    main.dataset.callStatus = call.status;
    fill(title, 'Call ', h('code', {}, call.id));
    const row = (k: string, v: Node | string) => [h('dt', {}, k), h('dd', {}, v)];
    fill(
      facts,
      row('Status', statusBadge(call.status)),
      row('Reason', call.endReason ?? '—'),
      row('Agent', call.agentId ? (agents.get(call.agentId) ?? call.agentId) : '—'),
      row('Direction', `${call.direction ?? '—'} via ${call.provider ?? '—'}`),
      row('From → to', `${call.from ?? '—'} → ${call.to ?? '—'}`),
      row('Started', when(call.startedAt)),
      row('Duration', duration(call.answeredAt ?? call.startedAt, call.endedAt)),
    );
  };
  /** The timeline and what it says (transcript, latency), as `GET /v1/calls/{id}` computes them. */
  const showTimeline = () => {
    fill(
      timeline,
      events.map((e) =>
        h(
          'li',
          { 'data-type': e.type },
          h('span', { class: 't' }, e.tMs === null ? '' : `+${(e.tMs / 1000).toFixed(3)} s`),
          h('span', { class: 'type' }, e.type),
          e.data ? h('span', { class: 'data' }, dataSummary(e.data)) : null,
        ),
      ),
    );
    const recorded: RecordedEvent[] = events.map((e) => ({ ...e, at: new Date(e.at) }));
    const said = transcriptOf(recorded);
    fill(
      transcript,
      said.map((t) =>
        h(
          'li',
          { class: t.role, 'data-role': t.role },
          h('span', { class: 'who-said' }, t.role === 'user' ? 'Caller:' : 'Agent:'),
          t.source === 'dtmf' ? `pressed ${t.text}` : t.text,
          t.interrupted ? h('span', { class: 'muted' }, ' (interrupted)') : null,
          t.rejected ? h('span', { class: 'muted' }, ' (not understood)') : null,
        ),
      ),
    );
    if (said.length === 0) transcript.append(h('li', { class: 'system' }, 'Nothing was said.'));
    const summary = latencySummary(recorded);
    const turns = events
      .filter((e) => e.type === 'turn.latency' && e.data)
      .map((e) => e.data as unknown as Parameters<typeof latencyChart>[0][number]);
    fill(
      latency,
      turns.length > 0 ? latencyChart(turns) : null,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          {},
          h('caption', { class: 'sr-only' }, `Latency over ${summary.turns} turns`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Stage', 'p50', 'p95', 'max'].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h(
            'tbody',
            {},
            LATENCY_ROWS.map(([key, label]) => {
              const s = summary[key as keyof typeof summary] as Stats | null;
              return h(
                'tr',
                {},
                h('th', { scope: 'row' }, label),
                h('td', { class: 'num' }, ms(s?.p50)),
                h('td', { class: 'num' }, ms(s?.p95)),
                h('td', { class: 'num' }, ms(s?.max)),
              );
            }),
          ),
        ),
      ),
      h('p', { class: 'muted' }, `${summary.turns} caller turns.`),
    );
  };
  // Events come in bursts (the whole timeline on open): draw once per burst.
  let drawing = false;
  const draw = () => {
    if (drawing) return;
    drawing = true;
    queueMicrotask(() => {
      drawing = false;
      if (!isCurrent()) return;
      showFacts();
      showTimeline();
    });
  };
  eventStream(
    `/calls/${encodeURIComponent(id)}/events`,
    {
      // Each opening sends the call and its whole timeline again.
      open: () => {
        events = [];
        problem('stream', null);
      },
      event: (e) => {
        if (e.event === 'call') call = e.data as Call;
        else if (e.event === 'timeline') {
          const event = e.data as TimelineEvent;
          let i = events.length;
          while (i > 0 && earlier(event, events[i - 1]) < 0) i--;
          events.splice(i, 0, event);
        } else return;
        draw();
      },
      down: (failure, retryInMs) => {
        if (!isCurrent() || failure.status === 401) return;
        if (!call && retryInMs === null) problem('load', `Could not load the call: ${failure.message}`);
        else problem('stream', pausedMessage(failure, retryInMs));
      },
    },
    isCurrent,
  );
  everySecond(() => {
    if (call && LIVE.has(call.status)) showFacts();
  }, isCurrent);
}
