// Pieces the views share: how a Problem is shown, the notices at the top of the page, the
// Manage ▼ menu button, and modal dialogs.

import { byId, h, replaceChildren, type Child } from "./dom";
import type { Problem, Violation } from "./errors";

/** A Problem as an alert box. `fields` maps request fields to the labels a form shows, so a
 * violation reads "Storage account name: …" rather than a request path. */
export function problemBox(
  problem: Problem,
  options: { actions?: Child[]; fields?: Record<string, string>; testid?: string } = {},
): HTMLElement {
  const violations = problem.violations.map((violation) =>
    h("li", {}, violationText(violation, options.fields ?? {})),
  );
  return h(
    "div",
    {
      class: "alert alert-error",
      role: "alert",
      "data-testid": options.testid ?? "problem",
      "data-reason": problem.reason,
    },
    h("p", { class: "alert-title" }, problem.title),
    h("p", {}, problem.localized ?? problem.detail),
    violations.length > 0 && h("ul", { class: "violations" }, violations),
    problem.retryAfter !== undefined &&
      h("p", { class: "muted" }, `You can try again in ${Math.ceil(problem.retryAfter)} s.`),
    options.actions && options.actions.length > 0 && h("div", { class: "alert-actions" }, options.actions),
  );
}

function violationText(violation: Violation, fields: Record<string, string>): string {
  const label = fields[violation.field] ?? humanField(violation.field);
  return `${label}: ${violation.description}`;
}

/** `connector.display_name` → "Display name"; `credentials.fields.values.account_key` →
 * "Account key". */
function humanField(field: string): string {
  const last = field.slice(field.lastIndexOf(".") + 1).replace(/_/g, " ");
  return last.charAt(0).toUpperCase() + last.slice(1);
}

/** How long a success notice stays, in milliseconds, while the pointer and the focus are
 * elsewhere. Problems and warnings stay until dismissed: they ask for something to be done. */
const NOTICE_MS = 8000;

/** Shows a notice at the top of the page: a success, a warning or a problem. Each has a
 * Dismiss button. A new notice replaces the success notices shown before it (they do not pile
 * up), a success goes away by itself after a few seconds (not while it is pointed at or has the
 * focus), and at most three notices are shown. */
export function notify(content: HTMLElement): void {
  const notices = byId("notices");
  const dismiss = h(
    "button",
    { type: "button", class: "icon-button", "aria-label": "Dismiss", onclick: () => wrapper.remove() },
    "×",
  );
  const transient = content.classList.contains("alert-success");
  const wrapper = h("div", { class: "notice", "data-transient": transient ? "true" : "false" }, content, dismiss);
  for (const old of notices.querySelectorAll(".notice[data-transient='true']")) old.remove();
  notices.prepend(wrapper);
  while (notices.children.length > 3) notices.lastElementChild?.remove();
  if (transient) expireWhenIdle(wrapper);
}

/** Removes `notice` after NOTICE_MS without the pointer or focus in it. */
function expireWhenIdle(notice: HTMLElement): void {
  let timer = 0;
  const arm = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => notice.remove(), NOTICE_MS);
  };
  const hold = () => window.clearTimeout(timer);
  notice.addEventListener("pointerenter", hold);
  notice.addEventListener("focusin", hold);
  notice.addEventListener("pointerleave", () => {
    if (!notice.contains(document.activeElement)) arm();
  });
  notice.addEventListener("focusout", (event) => {
    if (!notice.contains(event.relatedTarget as Node | null)) arm();
  });
  arm();
}

/** A success notice. */
export function success(title: string, detail?: string, testid = "success"): HTMLElement {
  return h(
    "div",
    { class: "alert alert-success", role: "status", "data-testid": testid },
    h("p", { class: "alert-title" }, title),
    detail && h("p", {}, detail),
  );
}

/** A warning notice: it went through, and something is left for the person to do. */
export function warning(title: string, detail: string, testid = "warning"): HTMLElement {
  return h(
    "div",
    { class: "alert alert-warning", role: "status", "data-testid": testid },
    h("p", { class: "alert-title" }, title),
    h("p", {}, detail),
  );
}

export function clearNotices(): void {
  replaceChildren(byId("notices"));
}

/** How each Manage menu opens again after the list is redrawn, by its button. */
const menuOpeners = new WeakMap<HTMLElement, (action: string | undefined) => void>();

/** The Manage menu open now: its button's id and the item with the focus, if any. */
export interface OpenMenu {
  button: string;
  action: string | undefined;
}

/** The open Manage menu within `scope`, if one is open. */
export function openMenu(scope: HTMLElement): OpenMenu | null {
  const button = scope.querySelector<HTMLElement>("[aria-haspopup='menu'][aria-expanded='true']");
  if (button === null || button.id === "") return null;
  const active = document.activeElement;
  const inMenu = active instanceof HTMLElement && active.closest("[role='menu']") !== null;
  return { button: button.id, action: inMenu ? active.dataset.action : undefined };
}

/** Opens the menu `state` describes again, with the focus on the same item; false when that
 * menu is no longer on the page (its connector is gone). */
export function reopenMenu(state: OpenMenu): boolean {
  const button = document.getElementById(state.button);
  const reopen = button && menuOpeners.get(button);
  if (!reopen) return false;
  reopen(state.action);
  return true;
}

/** A Manage ▼ button and its menu (WAI-ARIA menu button: Enter, Space or ↓ open it, ↑/↓ move,
 * Escape closes and returns focus, Tab leaves it; choosing an item returns focus to the button,
 * so a dialog it opens gives the focus back there). */
export function menuButton(
  label: string,
  id: string,
  items: { label: string; action: string; danger?: boolean; run: () => void }[],
): HTMLElement {
  const button = h(
    "button",
    {
      type: "button",
      class: "button button-small",
      id: `${id}-button`,
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": `${id}-menu`,
      "data-action": "manage",
    },
    label,
    h("span", { class: "caret", "aria-hidden": "true" }, "▼"),
  );
  const entries = items.map((item) =>
    h(
      "button",
      {
        type: "button",
        role: "menuitem",
        tabindex: "-1",
        class: item.danger ? "menu-item danger" : "menu-item",
        "data-action": item.action,
        onclick: () => {
          // The focus goes back to the button first, so a dialog the item opens returns it
          // there when it closes (not to this item, hidden by then, which would drop it).
          close(true);
          item.run();
        },
      },
      item.label,
    ),
  );
  const menu = h(
    "div",
    { class: "menu", role: "menu", id: `${id}-menu`, "aria-labelledby": `${id}-button`, hidden: true },
    entries,
  );
  const wrap = h("div", { class: "menu-wrap" }, button, menu);

  const outside = (event: Event) => {
    if (!wrap.contains(event.target as Node)) close(false);
  };
  function open(focus: number) {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    entries[focus]?.focus();
    document.addEventListener("pointerdown", outside, true);
  }
  function close(refocus: boolean) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", outside, true);
    if (refocus) button.focus();
  }
  button.addEventListener("click", () => (menu.hidden ? open(0) : close(false)));
  menuOpeners.set(button, (action) => {
    const at = entries.findIndex((entry) => entry.dataset.action === action);
    open(Math.max(at, 0));
  });
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      open(0);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      open(entries.length - 1);
    }
  });
  menu.addEventListener("keydown", (event) => {
    const at = entries.indexOf(document.activeElement as HTMLButtonElement);
    if (event.key === "Escape") {
      event.preventDefault();
      close(true);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      entries[(at + step + entries.length) % entries.length]?.focus();
    } else if (event.key === "Home") {
      event.preventDefault();
      entries[0]?.focus();
    } else if (event.key === "End") {
      event.preventDefault();
      entries[entries.length - 1]?.focus();
    } else if (event.key === "Tab") {
      close(false);
    }
  });
  return wrap;
}

/** What a dialog's submit does: resolve to close it, or return a Problem to show in it. */
export type Submit = (form: HTMLFormElement) => Promise<Problem | null>;

/** Opens a modal `<dialog id=…>` holding a form. The submit button is disabled and says
 * `busyLabel` while `submit` runs; a Problem it returns is shown above the buttons. */
export function openDialog(options: {
  id: string;
  title: string;
  body: Child[];
  submitLabel: string;
  busyLabel: string;
  danger?: boolean;
  submit: Submit;
  fields?: Record<string, string>;
  /** Controls to offer with a Problem the submit returned (for example a link to the
   * connector that already exists). */
  problemActions?: (problem: Problem, dialog: HTMLDialogElement) => Child[];
}): HTMLDialogElement {
  document.getElementById(options.id)?.remove();
  // Where the focus goes back to. The browser returns it to this element; if a live update
  // redrew the list meanwhile, the element is gone and its replacement (same id) takes it.
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const problemSlot = h("div", { class: "dialog-problem", "aria-live": "assertive" });
  const submitButton = h(
    "button",
    {
      type: "submit",
      class: options.danger ? "button button-danger" : "button button-primary",
      id: `${options.id}-submit`,
    },
    options.submitLabel,
  );
  const cancel = h(
    "button",
    { type: "button", class: "button", id: `${options.id}-cancel`, onclick: () => dialog.close() },
    "Cancel",
  );
  const form = h(
    "form",
    { class: "dialog-form", novalidate: false },
    h("h2", { id: `${options.id}-title`, class: "dialog-title" }, options.title),
    h("div", { class: "dialog-body" }, options.body),
    problemSlot,
    h("div", { class: "dialog-actions" }, cancel, submitButton),
  );
  const dialog = h(
    "dialog",
    { id: options.id, class: "dialog", "aria-labelledby": `${options.id}-title` },
    form,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submitButton.disabled = true;
    submitButton.textContent = options.busyLabel;
    replaceChildren(problemSlot);
    try {
      const problem = await options.submit(form);
      if (problem === null) {
        dialog.close();
        return;
      }
      markInvalid(form, problem.violations, options.fields ?? {});
      const actions = options.problemActions?.(problem, dialog) ?? [];
      replaceChildren(
        problemSlot,
        problemBox(problem, { actions, fields: options.fields, testid: "dialog-problem" }),
      );
    } finally {
      submitButton.disabled = false;
      submitButton.textContent = options.submitLabel;
    }
  });
  dialog.addEventListener("close", () => {
    dialog.remove();
    const lost = document.activeElement === null || document.activeElement === document.body;
    if (lost && opener !== null && !opener.isConnected && opener.id !== "") {
      document.getElementById(opener.id)?.focus();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Flags the inputs a violation names (`data-field` holds the request field). */
function markInvalid(form: HTMLFormElement, violations: Violation[], fields: Record<string, string>) {
  for (const input of form.querySelectorAll<HTMLElement>("[data-field]")) {
    input.removeAttribute("aria-invalid");
  }
  for (const violation of violations) {
    if (!(violation.field in fields)) continue;
    const input = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(violation.field)}"]`);
    input?.setAttribute("aria-invalid", "true");
  }
  form.querySelector<HTMLElement>("[aria-invalid=true]")?.focus();
}

/** A labelled form field: an input (or textarea) with its hint tied by aria-describedby. */
export function field(options: {
  id: string;
  label: string;
  name: string;
  requestField: string;
  required?: boolean;
  secret?: boolean;
  multiline?: boolean;
  hint?: string;
  value?: string;
  placeholder?: string;
  /** Shown but not editable (the value must stay as it is); still sent with the form. */
  readonly?: boolean;
}): HTMLElement {
  const hintId = `${options.id}-hint`;
  const common = {
    id: options.id,
    name: options.name,
    required: options.required ?? false,
    autocomplete: options.secret ? "new-password" : "off",
    spellcheck: "false",
    "data-field": options.requestField,
    "aria-describedby": options.hint ? hintId : undefined,
    placeholder: options.placeholder,
    readonly: options.readonly ?? false,
  };
  const control = options.multiline
    ? h("textarea", { ...common, rows: 4, class: options.secret ? "secret" : undefined })
    : h("input", { ...common, type: options.secret ? "password" : "text", value: options.value });
  return h(
    "div",
    { class: "field" },
    h(
      "label",
      { for: options.id },
      options.label,
      !options.required && h("span", { class: "optional" }, " (optional)"),
    ),
    control,
    options.hint && h("p", { class: "hint", id: hintId }, options.hint),
  );
}
