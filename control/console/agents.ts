import { ApiFailure, api, type Page } from './api.ts';
import { fill, h, when } from './dom.ts';
import {
  clearErrors,
  field,
  fieldError,
  input,
  notice,
  num,
  say,
  select,
  showFailure,
  text,
  textarea,
} from './forms.ts';

/** An agent as the API returns it (the fields the console shows or edits). */
export interface Agent {
  id: string;
  name: string;
  version: number;
  updatedAt: string;
  ready: boolean;
  warnings: string[];
  brain: string;
  language: string;
  greeting?: string;
  prompt?: string;
  voice?: string;
  transferTo?: string;
  stt?: Provider;
  llm?: Provider;
  tts?: Provider;
  intents: unknown[];
  tools: unknown[];
  endpointing: { minMs: number; maxMs: number };
  bargeIn: boolean;
  interruptMinMs: number;
  maxDurationSec?: number;
  maxConcurrentCalls?: number;
}

interface Provider {
  provider: string;
  model?: string;
  [other: string]: unknown;
}

/** What the API's agent schema allows (control/modules/agents/model.ts). */
const BRAINS = ['scripted', 'llm', 'echo'];
const STT = ['pocketsphinx', 'deepgram'];
const LLM = ['openai', 'openai-compatible'];
const TTS = ['flite', 'festival', 'espeak', 'openai', 'elevenlabs'];

/** Every agent of the account (up to 100 pages of 100). */
export async function allAgents(): Promise<Agent[]> {
  const out: Agent[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const page: Page<Agent> = await api<Page<Agent>>(
      'GET',
      `/agents?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    out.push(...page.data);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return out;
}

/** `#/agents`: the list. */
export async function agentsView(main: HTMLElement): Promise<void> {
  const status = notice();
  const body = h('tbody');
  fill(
    main,
    h('h1', {}, 'Agents'),
    h('p', {}, h('a', { class: 'button', href: '#/agents/new' }, 'New agent')),
    status,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        {},
        h('caption', { class: 'sr-only' }, 'Agents of this account'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Name', 'Brain', 'Ready', 'Version', 'Updated', ''].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        body,
      ),
    ),
  );
  const agents = await allAgents();
  if (agents.length === 0) {
    say(status, 'info', 'No agents yet: create one.');
    return;
  }
  for (const a of agents) {
    body.append(
      h(
        'tr',
        {},
        h(
          'td',
          {},
          h('a', { href: `#/agents/${a.id}` }, a.name),
          h('br'),
          h('code', { class: 'muted' }, a.id),
        ),
        h('td', {}, a.brain),
        h(
          'td',
          {},
          a.ready
            ? h('span', { class: 'badge live' }, 'ready')
            : h('span', { class: 'badge bad', title: a.warnings.join('\n') }, 'not ready'),
        ),
        h('td', { class: 'num' }, a.version),
        h('td', {}, when(a.updatedAt)),
        h('td', {}, h('a', { href: `#/talk?agent=${a.id}`, 'aria-label': `Talk to ${a.name}` }, 'Talk')),
      ),
    );
  }
}

/** The form's controls, one per API field. */
function controls(agent: Agent | null) {
  const numberInput = (value: number | undefined) =>
    input({ inputmode: 'numeric', value: value === undefined ? '' : String(value) });
  const providerSelect = (names: string[], current: Provider | undefined) =>
    select([['', '(default)'], ...names.map((n): [string, string] => [n, n])], current?.provider ?? '');
  return {
    name: input({ value: agent?.name ?? '', required: true }),
    brain: select(
      BRAINS.map((b): [string, string] => [b, b]),
      agent?.brain ?? 'scripted',
    ),
    language: input({ value: agent?.language ?? 'en-US' }),
    greeting: textarea(agent?.greeting ?? '', { class: 'prose', rows: 3 }),
    prompt: textarea(agent?.prompt ?? '', { class: 'prose', rows: 5 }),
    voice: input({ value: agent?.voice ?? '', list: 'voices' }),
    transferTo: input({
      value: agent?.transferTo ?? '',
      placeholder: '+14155550199 or sip:desk@pbx.example.com',
    }),
    sttProvider: providerSelect(STT, agent?.stt),
    sttModel: input({ value: agent?.stt?.model ?? '' }),
    llmProvider: providerSelect(LLM, agent?.llm),
    llmModel: input({ value: agent?.llm?.model ?? '' }),
    ttsProvider: providerSelect(TTS, agent?.tts),
    ttsModel: input({ value: agent?.tts?.model ?? '' }),
    bargeIn: h('input', { type: 'checkbox', checked: agent ? agent.bargeIn : true }),
    interruptMinMs: numberInput(agent?.interruptMinMs),
    minMs: numberInput(agent?.endpointing.minMs ?? 500),
    maxMs: numberInput(agent?.endpointing.maxMs ?? 3000),
    maxDurationSec: numberInput(agent?.maxDurationSec),
    maxConcurrentCalls: numberInput(agent?.maxConcurrentCalls),
    intents: textarea(JSON.stringify(agent?.intents ?? [], null, 2), { rows: 10 }),
    tools: textarea(JSON.stringify(agent?.tools ?? [], null, 2), { rows: 6 }),
  };
}

type Controls = ReturnType<typeof controls>;

/**
 * The request body from the form: on create only what is set; on update every field, `null`
 * clearing the optional ones left empty. Problems the API cannot see (JSON that does not parse,
 * a number that is not one) are reported on their fields and stop the save.
 */
function bodyOf(c: Controls, agent: Agent | null, form: HTMLFormElement): Record<string, unknown> | null {
  const body: Record<string, unknown> = {};
  let ok = true;
  const empty = agent ? null : undefined;
  const set = (key: string, value: unknown) => {
    if (value !== undefined) body[key] = value;
  };
  const number = (key: string, el: HTMLInputElement, clearable: boolean) => {
    const v = num(el);
    if (v !== null && !Number.isFinite(v)) {
      fieldError(form, key, 'must be a number');
      ok = false;
      return undefined;
    }
    return v ?? (clearable ? empty : undefined);
  };
  const json = (key: string, el: HTMLTextAreaElement) => {
    try {
      return JSON.parse(el.value.trim() || '[]');
    } catch (err) {
      fieldError(form, key, `is not valid JSON: ${(err as Error).message}`);
      ok = false;
      return undefined;
    }
  };
  const provider = (key: 'stt' | 'llm' | 'tts', sel: HTMLSelectElement, model: HTMLInputElement) => {
    const name = text(sel);
    if (!name) return empty;
    // Keep what the form does not show (options, fallback) when the provider stays the same.
    const kept = agent?.[key]?.provider === name ? { ...agent[key] } : {};
    const out: Provider = { ...kept, provider: name };
    const m = text(model);
    if (m) out.model = m;
    else delete out.model;
    return out;
  };
  body.name = c.name.value.trim();
  body.brain = c.brain.value;
  set('language', text(c.language) ?? undefined);
  for (const key of ['greeting', 'prompt', 'voice', 'transferTo'] as const) set(key, text(c[key]) ?? empty);
  set('stt', provider('stt', c.sttProvider, c.sttModel));
  set('llm', provider('llm', c.llmProvider, c.llmModel));
  set('tts', provider('tts', c.ttsProvider, c.ttsModel));
  body.bargeIn = c.bargeIn.checked;
  set('interruptMinMs', number('interruptMinMs', c.interruptMinMs, false));
  const minMs = number('endpointing.minMs', c.minMs, false);
  const maxMs = number('endpointing.maxMs', c.maxMs, false);
  if (minMs !== undefined || maxMs !== undefined) {
    body.endpointing = { minMs: minMs ?? agent?.endpointing.minMs, maxMs: maxMs ?? agent?.endpointing.maxMs };
  }
  set('maxDurationSec', number('maxDurationSec', c.maxDurationSec, true));
  set('maxConcurrentCalls', number('maxConcurrentCalls', c.maxConcurrentCalls, true));
  set('intents', json('intents', c.intents));
  set('tools', json('tools', c.tools));
  return ok ? body : null;
}

/** `#/agents/new` and `#/agents/<id>`: create or edit one agent. */
export async function agentEditor(main: HTMLElement, id: string | null): Promise<void> {
  const agent = id ? await api<Agent>('GET', `/agents/${encodeURIComponent(id)}`) : null;
  const c = controls(agent);
  const status = notice();
  const save = h('button', { type: 'submit' }, agent ? 'Save changes' : 'Create agent');
  const form = h(
    'form',
    { novalidate: true, 'aria-labelledby': 'agent-title' },
    h(
      'fieldset',
      {},
      h('legend', {}, 'Agent'),
      h(
        'div',
        { class: 'grid' },
        field({ field: 'name', label: 'Name' }, c.name),
        field(
          {
            field: 'brain',
            label: 'Brain',
            hint: 'scripted: greeting + intents, offline. llm: prompt + tools.',
          },
          c.brain,
        ),
        field({ field: 'language', label: 'Language', hint: 'BCP-47, e.g. en-US' }, c.language),
        field({ field: 'voice', label: 'Voice', hint: 'flite: rms, slt, awb, kal16, kal' }, c.voice),
        field(
          { field: 'greeting', label: 'Greeting', wide: true, hint: 'Said when the call connects.' },
          c.greeting,
        ),
        field({ field: 'prompt', label: 'Prompt (llm brain)', wide: true }, c.prompt),
      ),
      h(
        'datalist',
        { id: 'voices' },
        ['rms', 'slt', 'awb', 'kal16', 'kal', 'kal_diphone'].map((v) => h('option', { value: v })),
      ),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Providers'),
      h(
        'div',
        { class: 'grid' },
        field({ field: 'stt.provider', label: 'Speech to text' }, c.sttProvider),
        field({ field: 'stt.model', label: 'STT model' }, c.sttModel),
        field({ field: 'llm.provider', label: 'Language model' }, c.llmProvider),
        field({ field: 'llm.model', label: 'LLM model' }, c.llmModel),
        field({ field: 'tts.provider', label: 'Text to speech' }, c.ttsProvider),
        field({ field: 'tts.model', label: 'TTS model' }, c.ttsModel),
      ),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Turn-taking and limits'),
      h(
        'div',
        { class: 'grid' },
        field({ field: 'bargeIn', label: 'Caller speech interrupts the agent (barge-in)' }, c.bargeIn),
        field(
          {
            field: 'interruptMinMs',
            label: 'Interrupt after (ms)',
            hint: 'Caller speech needed to cut the agent off.',
          },
          c.interruptMinMs,
        ),
        field({ field: 'endpointing.minMs', label: 'End of turn: silence (ms)', hint: '100-5000' }, c.minMs),
        field(
          {
            field: 'endpointing.maxMs',
            label: 'End of turn: longest wait (ms)',
            hint: '100-30000, not less than the silence',
          },
          c.maxMs,
        ),
        field({ field: 'transferTo', label: 'Transfer to', hint: 'E.164 number or sip: URI' }, c.transferTo),
        field({ field: 'maxDurationSec', label: 'Longest call (s)' }, c.maxDurationSec),
        field({ field: 'maxConcurrentCalls', label: 'Concurrent calls' }, c.maxConcurrentCalls),
      ),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Intents and tools (JSON)'),
      h(
        'div',
        { class: 'grid' },
        field(
          {
            field: 'intents',
            label: 'Intents',
            wide: true,
            hint: '[{ "name", "examples": [...], "reply", "action"?: "hangup" | "transfer", "digit"? }]',
          },
          c.intents,
        ),
        field(
          {
            field: 'tools',
            label: 'Tools (llm brain)',
            wide: true,
            hint: '[{ "name", "description", "parameters": { "type": "object", ... }, "webhookUrl" }]',
          },
          c.tools,
        ),
      ),
    ),
    h(
      'div',
      { class: 'row' },
      save,
      agent ? h('a', { class: 'button secondary', href: `#/talk?agent=${agent.id}` }, 'Talk to it') : null,
    ),
  );
  const warnings =
    agent && !agent.ready
      ? h(
          'div',
          { class: 'notice error' },
          h('strong', {}, 'Not ready on this deployment: '),
          agent.warnings.join('; '),
        )
      : null;
  fill(
    main,
    h('p', {}, h('a', { href: '#/agents' }, '← Agents')),
    h('h1', { id: 'agent-title' }, agent ? `Agent: ${agent.name}` : 'New agent'),
    agent ? h('p', { class: 'muted' }, h('code', {}, agent.id), ` · version ${agent.version}`) : null,
    warnings,
    status,
    form,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = bodyOf(c, agent, form);
    if (!body) {
      say(status, 'error', 'Not saved: fix the fields marked below.');
      form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    save.disabled = true;
    try {
      const saved = agent
        ? await api<Agent>('PATCH', `/agents/${agent.id}`, body)
        : await api<Agent>('POST', '/agents', body);
      if (!agent) {
        location.hash = `#/agents/${saved.id}`;
        return;
      }
      await agentEditor(main, saved.id);
      say(
        main.querySelector('.notice[role="alert"]') as HTMLElement,
        'ok',
        `Saved: version ${saved.version}.`,
      );
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) return;
      showFailure(form, status, err);
    } finally {
      save.disabled = false;
    }
  });
}
