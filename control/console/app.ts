import { agentEditor, agentsView } from './agents.ts';
import { ApiFailure, api, forgetKey, messageOf, onUnauthorized, storedKey, storeKey } from './api.ts';
import { callsView, callView } from './calls.ts';
import { fill, h } from './dom.ts';
import { field, input, notice, say } from './forms.ts';
import { numbersView } from './numbers.ts';
import { endTalk, talkView } from './talk.ts';
import { webhooksView } from './webhooks.ts';

/**
 * The console's shell: sign-in with an API key (kept in session storage, so it goes when the tab
 * closes), the section navigation, and a hash router (`#/agents`, `#/talk`, `#/calls/<id>`, …).
 */

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const account = document.getElementById('account') as HTMLElement;
const signOutButton = document.getElementById('sign-out') as HTMLButtonElement;

/** Bumped on every navigation: a view still loading for an older route draws nothing. */
let generation = 0;

function signedIn(name: string): void {
  nav.hidden = false;
  signOutButton.hidden = false;
  account.textContent = name;
}

/** The sign-in form, with `message` (why we are here) when there is one. */
function signIn(message?: string): void {
  endTalk();
  generation++;
  nav.hidden = true;
  signOutButton.hidden = true;
  account.textContent = '';
  const key = input({ type: 'password', autocomplete: 'off', spellcheck: false, placeholder: 'sk_live_…' });
  const status = notice();
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card', id: 'sign-in', novalidate: true },
    h('h1', {}, 'Sign in'),
    h(
      'p',
      {},
      'Use an API key of your account. The first start of sipai prints an admin key; ',
      h('code', {}, 'npm run admin -- create-key'),
      ' makes a new one. The key stays in this tab only.',
    ),
    status,
    field({ field: 'apiKey', label: 'API key' }, key),
    h('p', {}, button),
  );
  fill(main, form);
  if (message) say(status, 'error', message);
  key.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const secret = key.value.trim();
    if (!secret) {
      say(status, 'error', 'Enter an API key (it starts with sk_live_).');
      key.focus();
      return;
    }
    button.disabled = true;
    say(status, 'info', 'Checking the key…');
    try {
      const me = await api<{ id: string; name: string }>('GET', '/account', undefined, secret);
      storeKey(secret);
      signedIn(me.name);
      if (!location.hash || location.hash === '#/' || location.hash === '#') location.hash = '#/agents';
      else void route();
    } catch (err) {
      const why =
        err instanceof ApiFailure && err.status === 401
          ? `This key was not accepted: ${err.message}. Check that you copied all of it, or create a new key with npm run admin -- create-key.`
          : `Could not sign in: ${messageOf(err)}`;
      say(status, 'error', why);
      key.setAttribute('aria-invalid', 'true');
      key.focus();
    } finally {
      button.disabled = false;
    }
  });
}

function markSection(section: string): void {
  for (const a of nav.querySelectorAll<HTMLAnchorElement>('a[data-section]')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route(): Promise<void> {
  if (!storedKey()) {
    signIn();
    return;
  }
  const mine = ++generation;
  const isCurrent = () => mine === generation;
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const section = parts[0] ?? 'agents';
  if (section !== 'talk') endTalk();
  markSection(section);
  fill(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    switch (section) {
      case 'agents':
        if (parts[1]) await agentEditor(main, parts[1] === 'new' ? null : parts[1]);
        else await agentsView(main);
        break;
      case 'talk':
        await talkView(main, new URLSearchParams(search));
        break;
      case 'calls':
        if (parts[1]) await callView(main, parts[1], isCurrent);
        else await callsView(main, isCurrent);
        break;
      case 'numbers':
        await numbersView(main);
        break;
      case 'webhooks':
        await webhooksView(main);
        break;
      default:
        fill(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/agents' }, 'Go to Agents')));
    }
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return;
    if (isCurrent()) {
      fill(
        main,
        h('h1', {}, 'Something went wrong'),
        h('p', { class: 'notice error', role: 'alert' }, messageOf(err)),
      );
    }
    return;
  }
  if (isCurrent()) main.querySelector<HTMLElement>('h1')?.setAttribute('tabindex', '-1');
}

onUnauthorized((message) => {
  forgetKey();
  signIn(
    `Your API key is no longer accepted (${message}). It may have been revoked: sign in with another key.`,
  );
});

signOutButton.addEventListener('click', () => {
  forgetKey();
  signIn();
});

window.addEventListener('hashchange', () => {
  void route().then(() => main.querySelector<HTMLElement>('h1')?.focus());
});

async function boot(): Promise<void> {
  const key = storedKey();
  if (!key) {
    signIn();
    return;
  }
  try {
    const me = await api<{ name: string }>('GET', '/account');
    signedIn(me.name);
    await route();
  } catch (err) {
    if (!(err instanceof ApiFailure && err.status === 401))
      signIn(`Could not reach the API: ${messageOf(err)}`);
  }
}

void boot();
