import { type Agent, allAgents } from './agents.ts';
import { ApiFailure, api, type Page } from './api.ts';
import { fill, h, when } from './dom.ts';
import { clearErrors, deleteButton, field, input, notice, select, showFailure, text } from './forms.ts';

/** `#/numbers`: phone numbers and the agent each routes to; add, edit, delete. */

interface PhoneNumber {
  id: string;
  phoneNumber: string;
  provider: string;
  agentId: string;
  label: string | null;
  updatedAt: string;
}

const PROVIDERS: [string, string][] = [
  ['twilio', 'Twilio'],
  ['telnyx', 'Telnyx'],
  ['jambonz', 'Jambonz'],
];

/** The add/edit form; `number` null adds one. */
function numberForm(agents: Agent[], number: PhoneNumber | null, done: () => void): HTMLElement {
  const phone = input({ value: number?.phoneNumber ?? '', placeholder: '+14155550123', inputmode: 'tel' });
  if (number) phone.readOnly = true;
  const provider = select(PROVIDERS, number?.provider ?? 'twilio');
  const agent = select(
    agents.map((a): [string, string] => [a.id, a.name]),
    number?.agentId ?? agents[0]?.id ?? '',
  );
  const label = input({ value: number?.label ?? '' });
  const status = notice();
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-label': number ? `Edit ${number.phoneNumber}` : 'Add a number' },
    h('h2', {}, number ? `Edit ${number.phoneNumber}` : 'Add a number'),
    status,
    h(
      'div',
      { class: 'grid' },
      field(
        {
          field: 'phoneNumber',
          label: 'Phone number',
          hint: number ? 'Fixed: delete and add to change it.' : 'E.164',
        },
        phone,
      ),
      field({ field: 'provider', label: 'Provider' }, provider),
      field({ field: 'agentId', label: 'Agent' }, agent),
      field({ field: 'label', label: 'Label' }, label),
    ),
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit' }, number ? 'Save' : 'Add number'),
      number ? h('button', { type: 'button', class: 'secondary', onclick: done }, 'Cancel') : null,
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      if (number) {
        await api('PATCH', `/numbers/${number.id}`, {
          provider: provider.value,
          agentId: agent.value,
          label: text(label),
        });
      } else {
        const body: Record<string, unknown> = {
          phoneNumber: phone.value.trim(),
          provider: provider.value,
          agentId: agent.value,
        };
        const l = text(label);
        if (l) body.label = l;
        await api('POST', '/numbers', body);
      }
      done();
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) return;
      showFailure(form, status, err);
    }
  });
  return form;
}

export async function numbersView(main: HTMLElement): Promise<void> {
  const agents = await allAgents();
  const names = new Map(agents.map((a) => [a.id, a.name]));
  const page = await api<Page<PhoneNumber>>('GET', '/numbers?limit=100');
  const status = notice();
  const editor = h('div');
  const reload = () => void numbersView(main);
  const body = h(
    'tbody',
    {},
    page.data.map((n) =>
      h(
        'tr',
        {},
        h('td', {}, h('span', { class: 'mono' }, n.phoneNumber)),
        h('td', {}, n.provider),
        h('td', {}, names.get(n.agentId) ?? n.agentId),
        h('td', {}, n.label ?? '—'),
        h('td', {}, when(n.updatedAt)),
        h(
          'td',
          {},
          h(
            'div',
            { class: 'row' },
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                'aria-label': `Edit ${n.phoneNumber}`,
                onclick: () => {
                  fill(editor, numberForm(agents, n, reload));
                  editor.querySelector('select')?.focus();
                },
              },
              'Edit',
            ),
            deleteButton(
              n.phoneNumber,
              `Delete ${n.phoneNumber}? Its calls will no longer reach ${names.get(n.agentId) ?? 'the agent'}.`,
              `/numbers/${n.id}`,
              status,
              reload,
            ),
          ),
        ),
      ),
    ),
  );
  if (page.data.length === 0) {
    body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No numbers yet.')));
  }
  fill(
    main,
    h('h1', {}, 'Numbers'),
    h(
      'p',
      { class: 'muted' },
      'Point the provider at this deployment: Twilio ',
      h('code', {}, `${location.origin}/telephony/twilio/voice`),
      ', Telnyx ',
      h('code', {}, `${location.origin}/telephony/telnyx/voice`),
      ', Jambonz ',
      h('code', {}, `${location.origin}/telephony/jambonz/call`),
      '.',
    ),
    status,
    h(
      'div',
      { class: 'table-wrap card' },
      h(
        'table',
        {},
        h('caption', { class: 'sr-only' }, 'Phone numbers'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Number', 'Provider', 'Agent', 'Label', 'Updated', ''].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        body,
      ),
    ),
    editor,
    agents.length > 0
      ? numberForm(agents, null, reload)
      : h('p', {}, 'Create an agent first: a number routes to one.'),
  );
}
