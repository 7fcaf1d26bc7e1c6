import { allAgents } from './agents.ts';
import { api, messageOf, type Page } from './api.ts';
import { duration, fill, h, ms, when } from './dom.ts';
import { field, notice, say, select } from './forms.ts';
import { latencyChart } from './talk.ts';

/**
 * `#/calls` and `#/calls/<id>`: recent calls with filters, and one call's timeline, transcript
 * and latency. Both poll while they are on screen, so live calls move without a reload.
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

interface Stats {
  count: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

interface CallDetail extends Call {
  timeline: { type: string; at: string; tMs: number | null; data: Record<string, unknown> | null }[];
  transcript: {
    role: 'user' | 'agent';
    text: string;
    startMs: number | null;
    source?: string;
    interrupted?: boolean;
    rejected?: boolean;
  }[];
  latency: { turns: number } & Record<string, Stats | null | number>;
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
/** How often a view on screen asks again. */
const POLL_MS = 2000;

/** Runs `tick` now and every POLL_MS after it finishes, until `stopped()` says so. */
function poll(tick: () => Promise<boolean>, stopped: () => boolean): void {
  const run = async () => {
    if (stopped()) return;
    let again = true;
    try {
      again = await tick();
    } catch {
      // A failed poll is shown by the tick itself; try again later.
    }
    if (again && !stopped()) window.setTimeout(run, POLL_MS);
  };
  void run();
}

function statusBadge(status: string): HTMLElement {
  const cls = LIVE.has(status) ? 'badge live' : status === 'completed' ? 'badge' : 'badge bad';
  return h('span', { class: cls }, status);
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
  const query = () => {
    const q = new URLSearchParams({ limit: '50' });
    if (statusFilter.value) q.set('status', statusFilter.value);
    if (directionFilter.value) q.set('direction', directionFilter.value);
    if (agentFilter.value) q.set('agentId', agentFilter.value);
    return q.toString();
  };
  const refresh = async (): Promise<boolean> => {
    try {
      const page = await api<Page<Call>>('GET', `/calls?${query()}`);
      if (!isCurrent()) return false;
      status.className = 'notice';
      status.replaceChildren();
      body.replaceChildren(
        ...page.data.map((c) =>
          h(
            'tr',
            { 'data-call-id': c.id, 'data-status': c.status },
            h('td', {}, h('a', { href: `#/calls/${encodeURIComponent(c.id)}` }, when(c.startedAt))),
            h('td', {}, statusBadge(c.status)),
            h('td', {}, c.endReason ?? '—'),
            h('td', {}, c.direction ?? '—'),
            h('td', { class: 'num' }, duration(c.answeredAt ?? c.startedAt, c.endedAt)),
            h('td', {}, c.agentId ? (names.get(c.agentId) ?? h('code', {}, c.agentId)) : '—'),
            h('td', {}, `${c.from ?? '—'} → ${c.to ?? '—'}`),
          ),
        ),
      );
      if (page.data.length === 0) {
        body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No calls match.')));
      }
      const live = page.data.filter((c) => LIVE.has(c.status)).length;
      updated.textContent = `${live > 0 ? `${live} live · ` : ''}updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (isCurrent()) say(status, 'error', `Could not load calls: ${messageOf(err)}`);
    }
    return true;
  };
  for (const f of [statusFilter, directionFilter, agentFilter])
    f.addEventListener('change', () => void refresh());
  poll(refresh, () => !isCurrent());
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
  let settling = 0;
  const refresh = async (): Promise<boolean> => {
    let call: CallDetail;
    try {
      call = await api<CallDetail>('GET', `/calls/${encodeURIComponent(id)}`);
    } catch (err) {
      if (isCurrent()) say(status, 'error', `Could not load the call: ${messageOf(err)}`);
      return true;
    }
    if (!isCurrent()) return false;
    status.className = 'notice';
    status.replaceChildren();
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
    fill(
      timeline,
      call.timeline.map((e) =>
        h(
          'li',
          { 'data-type': e.type },
          h('span', { class: 't' }, e.tMs === null ? '' : `+${(e.tMs / 1000).toFixed(3)} s`),
          h('span', { class: 'type' }, e.type),
          e.data ? h('span', { class: 'data' }, dataSummary(e.data)) : null,
        ),
      ),
    );
    fill(
      transcript,
      call.transcript.map((t) =>
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
    if (call.transcript.length === 0) transcript.append(h('li', { class: 'system' }, 'Nothing was said.'));
    const turns = call.timeline
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
          h('caption', { class: 'sr-only' }, `Latency over ${call.latency.turns} turns`),
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
              const s = call.latency[key] as Stats | null;
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
      h('p', { class: 'muted' }, `${call.latency.turns} caller turns.`),
    );
    // An ended call's record only changes while the recorder catches up: a few more polls
    // until its end event is in, then stop.
    if (LIVE.has(call.status)) return true;
    return !call.timeline.some((e) => e.type === 'call.ended') && settling++ < 15;
  };
  poll(refresh, () => !isCurrent());
}
