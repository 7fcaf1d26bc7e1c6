import { ApiFailure, api, type Page } from './api.ts';
import { fill, h, when } from './dom.ts';
import { clearErrors, deleteButton, field, input, notice, say, showFailure, text } from './forms.ts';

/** `#/webhooks`: endpoints that receive the account's events; add, edit, enable, delete. */

interface Endpoint {
  id: string;
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
  disabledReason: string | null;
  updatedAt: string;
}

function eventsOf(el: HTMLInputElement): string[] {
  return el.value
    .split(/[\s,]+/)
    .map((e) => e.trim())
    .filter(Boolean);
}

function endpointForm(endpoint: Endpoint | null, done: (secret?: string) => void): HTMLElement {
  const url = input({
    value: endpoint?.url ?? '',
    placeholder: 'https://example.com/hooks/sipai',
    inputmode: 'url',
  });
  const events = input({ value: endpoint?.events.join(', ') ?? '', placeholder: 'call.ended, call.started' });
  const description = input({ value: endpoint?.description ?? '' });
  const enabled = h('input', { type: 'checkbox', checked: endpoint ? endpoint.enabled : true });
  const status = notice();
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-label': endpoint ? `Edit ${endpoint.url}` : 'Add an endpoint' },
    h('h2', {}, endpoint ? 'Edit endpoint' : 'Add an endpoint'),
    status,
    h(
      'div',
      { class: 'grid' },
      field({ field: 'url', label: 'URL', wide: true }, url),
      field(
        {
          field: 'events',
          label: 'Events',
          hint: 'Comma-separated event types (docs/events.md); empty: every event.',
        },
        events,
      ),
      field({ field: 'description', label: 'Description' }, description),
      endpoint ? field({ field: 'enabled', label: 'Enabled' }, enabled) : null,
    ),
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit' }, endpoint ? 'Save' : 'Add endpoint'),
      endpoint ? h('button', { type: 'button', class: 'secondary', onclick: () => done() }, 'Cancel') : null,
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body: Record<string, unknown> = { url: url.value.trim(), events: eventsOf(events) };
    const d = text(description);
    if (d || endpoint) body.description = d ?? '';
    if (endpoint) body.enabled = enabled.checked;
    try {
      if (endpoint) {
        await api('PATCH', `/webhooks/${endpoint.id}`, body);
        done();
      } else {
        const created = await api<{ secret: string }>('POST', '/webhooks', body);
        done(created.secret);
      }
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) return;
      showFailure(form, status, err);
    }
  });
  return form;
}

export async function webhooksView(main: HTMLElement, secret?: string): Promise<void> {
  const page = await api<Page<Endpoint>>('GET', '/webhooks?limit=100');
  const status = notice();
  const editor = h('div');
  const reload = (newSecret?: string) => void webhooksView(main, newSecret);
  const body = h(
    'tbody',
    {},
    page.data.map((w) =>
      h(
        'tr',
        {},
        h(
          'td',
          {},
          h('span', { class: 'mono' }, w.url),
          w.description ? h('div', { class: 'muted' }, w.description) : null,
        ),
        h('td', {}, w.events.length > 0 ? w.events.join(', ') : 'all'),
        h(
          'td',
          {},
          w.enabled
            ? h('span', { class: 'badge live' }, 'enabled')
            : h('span', { class: 'badge bad' }, 'disabled'),
          w.disabledReason ? h('div', { class: 'muted' }, w.disabledReason) : null,
        ),
        h('td', {}, when(w.updatedAt)),
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
                'aria-label': `Edit ${w.url}`,
                onclick: () => {
                  fill(editor, endpointForm(w, reload));
                  editor.querySelector('input')?.focus();
                },
              },
              'Edit',
            ),
            deleteButton(w.url, `Delete the endpoint ${w.url}?`, `/webhooks/${w.id}`, status, reload),
          ),
        ),
      ),
    ),
  );
  if (page.data.length === 0) {
    body.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No endpoints yet.')));
  }
  fill(
    main,
    h('h1', {}, 'Webhooks'),
    status,
    h(
      'div',
      { class: 'table-wrap card' },
      h(
        'table',
        {},
        h('caption', { class: 'sr-only' }, 'Webhook endpoints'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['URL', 'Events', 'State', 'Updated', ''].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        body,
      ),
    ),
    editor,
    endpointForm(null, reload),
  );
  if (secret) {
    say(status, 'ok', 'Endpoint added. Its signing secret, shown only now: ', h('code', {}, secret));
  }
}
