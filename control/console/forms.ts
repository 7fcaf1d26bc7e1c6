import { ApiFailure, api, messageOf } from './api.ts';
import { type Child, h, uid } from './dom.ts';

/**
 * Form fields that know which API field they edit (`data-field`), so a 422 from the API lands
 * next to the input it is about, with `aria-invalid` and `aria-describedby` set.
 */

export interface FieldOptions {
  /** The API field this control edits, dotted (`endpointing.minMs`). */
  field: string;
  label: string;
  hint?: string;
  wide?: boolean;
}

/** A labelled control in a wrapper that errors for `field` are shown in. */
export function field(
  opts: FieldOptions,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
) {
  control.id ||= uid('f');
  control.name ||= opts.field;
  const hintId = opts.hint ? uid('hint') : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  const isCheck = control instanceof HTMLInputElement && control.type === 'checkbox';
  const label = h('label', { for: control.id }, opts.label);
  return h(
    'div',
    { class: `field${opts.wide ? ' wide' : ''}${isCheck ? ' check' : ''}`, 'data-field': opts.field },
    isCheck ? [control, label] : [label, control],
    hintId ? h('p', { class: 'hint', id: hintId }, opts.hint) : null,
  );
}

export function input(attrs: Record<string, string | number | boolean | undefined> = {}): HTMLInputElement {
  return h('input', { type: 'text', autocomplete: 'off', ...attrs });
}

export function select(options: [value: string, label: string][], value = ''): HTMLSelectElement {
  const el = h('select', {}, ...options.map(([v, l]) => h('option', { value: v }, l)));
  el.value = value;
  return el;
}

export function textarea(
  value = '',
  attrs: Record<string, string | number | boolean> = {},
): HTMLTextAreaElement {
  const el = h('textarea', { rows: 4, spellcheck: false, ...attrs });
  el.value = value;
  return el;
}

/** A notice area; `role=alert` so a screen reader hears a failure at once. */
export function notice(): HTMLParagraphElement {
  return h('p', { class: 'notice', role: 'alert' });
}

export function say(el: HTMLElement, kind: 'error' | 'ok' | 'info', ...text: Child[]): void {
  el.className = `notice ${kind}`;
  el.replaceChildren(
    ...text
      .filter((t): t is Node | string => t !== null && t !== undefined && t !== false)
      .map((t) => (t instanceof Node ? t : String(t))),
  );
}

export function clearErrors(form: HTMLElement): void {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const described = (el.getAttribute('aria-describedby') ?? '')
      .split(' ')
      .filter((id) => id && !id.startsWith('err-'))
      .join(' ');
    if (described) el.setAttribute('aria-describedby', described);
    else el.removeAttribute('aria-describedby');
  }
}

/** The wrapper of `field` in `form`, or of the nearest field it is part of (`intents.0.reply` → `intents`). */
function wrapperOf(form: HTMLElement, path: string): HTMLElement | null {
  const parts = path.split('.');
  for (let n = parts.length; n > 0; n--) {
    const name = parts.slice(0, n).join('.');
    const exact = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(name)}"]`);
    if (exact) return exact;
    // A whole object the API rejected (`stt`): its first control (`stt.provider`).
    const child = form.querySelector<HTMLElement>(`[data-field^="${CSS.escape(`${name}.`)}"]`);
    if (child) return child;
  }
  return null;
}

/** Marks one field invalid with `message` next to it; false when the form has no such field. */
export function fieldError(form: HTMLElement, path: string, message: string): boolean {
  const wrapper = wrapperOf(form, path);
  if (!wrapper) return false;
  const id = uid('err');
  const text = path === wrapper.dataset.field ? message : `${path}: ${message}`;
  wrapper.append(h('p', { class: 'field-error', id }, text));
  const control = wrapper.querySelector('input, select, textarea');
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    const described = control.getAttribute('aria-describedby');
    control.setAttribute('aria-describedby', described ? `${described} ${id}` : id);
  }
  return true;
}

/**
 * Shows a failed save: each field the API named gets its message next to it, the rest (and the
 * summary) go to `status`; focus moves to the first invalid control.
 */
export function showFailure(form: HTMLElement, status: HTMLElement, err: unknown): void {
  clearErrors(form);
  if (err instanceof ApiFailure && err.issues.length > 0) {
    const unplaced = err.issues.filter((i) => !fieldError(form, i.field, i.message));
    say(
      status,
      'error',
      unplaced.length === 0
        ? 'Not saved: the API rejected the fields marked below.'
        : `Not saved: ${unplaced.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
    );
  } else {
    say(status, 'error', `Not saved: ${messageOf(err)}`);
  }
  form.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
}

/** An input's trimmed value, or null when empty. */
export function text(el: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement): string | null {
  const v = el.value.trim();
  return v === '' ? null : v;
}

/** A number input's value, or null when empty (the API judges the range). */
export function num(el: HTMLInputElement): number | null {
  const v = el.value.trim();
  return v === '' ? null : Number(v);
}

/**
 * A "Delete" button: asks `question`, deletes `path` through the API, then `reload`s; a refusal
 * is said in `status`.
 */
export function deleteButton(
  label: string,
  question: string,
  path: string,
  status: HTMLElement,
  reload: () => void,
): HTMLButtonElement {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger',
      'aria-label': `Delete ${label}`,
      onclick: async () => {
        if (!confirm(question)) return;
        try {
          await api('DELETE', path);
          reload();
        } catch (err) {
          say(status, 'error', `Not deleted: ${(err as Error).message}`);
        }
      },
    },
    'Delete',
  );
}
