// The connectors console: a page for the people who manage a customer account's connectors,
// and the reference browser client of the API. It signs in with an API key (kept in this tab's
// sessionStorage only), opens a customer account, lists its connectors grouped as the product
// text's table, links, reauthorizes and deletes them, completes OAuth sign-ins that come back to
// it, and follows the account's events live.

import { toJsonString } from "@bufbuild/protobuf";
import {
  Connector_State,
  ConnectorSchema,
  type Connector,
  type ConnectorEvent,
  type ConnectorType,
} from "./gen/connector/v1/connector_service_pb";
import { accountName, api, lastSegment } from "./api";
import {
  authorizeNew,
  confirmDelete,
  existingLink,
  reauthorize,
  testAccess,
  tryRename,
  type Host,
} from "./actions";
import { renderDetails } from "./details";
import { byId, h, replaceChildren } from "./dom";
import { problemOf, type Problem } from "./errors";
import { EventFeed } from "./events";
import { renderGroups } from "./list";
import { session } from "./session";
import { clearNotices, notify, openMenu, problemBox, reopenMenu, success } from "./ui";

class ConsolePage implements Host {
  private types: ConnectorType[] = [];
  private connectors: Connector[] = [];
  /** Display names of every connector seen, deleted ones too, for the timeline. */
  private readonly names = new Map<string, string>();
  private selected: string | null = null;
  /** What Test access last found, shown in the panel until it no longer applies. */
  private accessResult: { name: string; box: HTMLElement; deauthorized: boolean } | null = null;
  private current = "";
  private reloadTimer: number | undefined;
  /** Counts reloads, so the answer of an outdated one is dropped. */
  private reloads = 0;
  /** What the list shows now (see `shownAs`), so an answer with nothing new redraws nothing. */
  private listShown: string | null = null;
  private readonly feed = new EventFeed(
    byId<HTMLOListElement>("event-list"),
    byId("live-indicator"),
    (connector, connectorType) => this.describe(connector, connectorType),
    (event) => this.onEvent(event),
  );

  constructor() {
    byId<HTMLFormElement>("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.signIn();
    });
    byId("sign-out").addEventListener("click", () => this.signOut());
    byId<HTMLFormElement>("account-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const account = byId<HTMLInputElement>("account-input").value.trim();
      if (account !== "") void this.openAccount(account);
    });
  }

  async boot(): Promise<void> {
    if (session.apiKey() === null) {
      // An OAuth return without a session cannot be completed: drop its parameters.
      if (window.location.search !== "") history.replaceState(null, "", window.location.pathname);
      this.showSignIn();
      return;
    }
    await this.signedIn();
  }

  // Host ------------------------------------------------------------------------------------

  account(): string {
    return this.current;
  }

  typeOf(connector: Connector): ConnectorType | undefined {
    return this.types.find((type) => type.name === connector.connectorType);
  }

  async reload(): Promise<void> {
    const account = this.current;
    if (account === "") return;
    // Reloads overlap (a live event during an action's reload): only the latest one shows
    // what it found, so an older answer that arrives late never replaces a newer list.
    const generation = ++this.reloads;
    try {
      const connectors: Connector[] = [];
      let pageToken = "";
      do {
        const page = await api.listConnectors({ parent: accountName(account), pageSize: 1000, pageToken });
        connectors.push(...page.connectors);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      if (account !== this.current || generation !== this.reloads) return;
      this.connectors = connectors;
      this.clearAccountProblem();
      for (const connector of connectors) this.names.set(connector.name, connector.displayName);
      const shown = shownAs(connectors);
      if (shown !== this.listShown) {
        this.listShown = shown;
        this.renderList();
      }
      this.feed.renameAll();
      byId("groups").setAttribute("aria-busy", "false");
    } catch (error) {
      if (account === this.current && generation === this.reloads) this.showListProblem(problemOf(error));
      return;
    }
    if (this.selected !== null) await this.select(this.selected, false);
  }

  async select(name: string, focus = true): Promise<void> {
    this.selected = name;
    const panel = byId("details");
    try {
      const connector = await api.getConnector({ name });
      if (this.selected !== name) return;
      this.names.set(connector.name, connector.displayName);
      // A refresh that finds the connector as shown leaves the panel alone.
      const shown = shownAs([connector]);
      if (!focus && !panel.hidden && panel.dataset.shown === shown) return;
      panel.dataset.shown = shown;
      // A redraw keeps the focus on the same control.
      const focused = panel.contains(document.activeElement) ? document.activeElement?.id : undefined;
      replaceChildren(
        panel,
        renderDetails(connector, this.typeOf(connector), {
          close: () => this.closeDetails(),
          rename: (c, slot) => void tryRename(c, slot),
          reauthorize: (c) => reauthorize(this, c),
          remove: (c) => confirmDelete(this, c),
          testAccess: (c, slot) => void testAccess(this, c, slot),
        }),
      );
      const kept = this.accessResult;
      if (kept !== null && kept.name === connector.name) {
        // A lost authorization that was reauthorized since is news no more.
        if (kept.deauthorized && connector.state === Connector_State.AUTHORIZED) this.accessResult = null;
        else replaceChildren(byId("access-result"), kept.box);
      }
      panel.dataset.connector = connector.name;
      panel.hidden = false;
      // In the fragment, so a reload shows the same connector.
      history.replaceState(null, "", `#${lastSegment(connector.name)}`);
      for (const row of document.querySelectorAll("tr[data-connector]")) {
        row.classList.toggle("selected", row.getAttribute("data-connector") === name);
      }
      if (focus) byId("details-title").focus();
      else if (focused) document.getElementById(focused)?.focus();
    } catch (error) {
      const problem = problemOf(error);
      if (problem.reason === "CONNECTOR_NOT_FOUND") {
        this.closeDetails();
        return;
      }
      delete panel.dataset.shown;
      replaceChildren(panel, problemBox(problem, { testid: "details-problem" }));
      panel.hidden = false;
    }
  }

  keepAccessResult(name: string, box: HTMLElement, deauthorized: boolean): void {
    this.accessResult = { name, box, deauthorized };
  }

  // Sign-in and accounts ----------------------------------------------------------------------

  private showSignIn(): void {
    byId("sign-in").hidden = false;
    byId("workspace").hidden = true;
    byId("account-form").hidden = true;
    byId("session").hidden = true;
    byId("no-account").hidden = true;
    byId("api-key").focus();
  }

  private async signIn(): Promise<void> {
    const input = byId<HTMLInputElement>("api-key");
    const key = input.value.trim();
    const slot = byId("sign-in-problem");
    replaceChildren(slot);
    if (key === "") return;
    const button = byId<HTMLButtonElement>("sign-in-button");
    button.disabled = true;
    session.setApiKey(key);
    try {
      // A key that can read the connector types is a key the service accepts.
      await api.listConnectorTypes({});
      input.value = "";
      await this.signedIn();
    } catch (error) {
      session.clear();
      replaceChildren(slot, problemBox(problemOf(error), { testid: "sign-in-problem" }));
      input.focus();
    } finally {
      button.disabled = false;
    }
  }

  private signOut(): void {
    this.feed.stop();
    session.clear();
    this.current = "";
    this.selected = null;
    this.connectors = [];
    clearNotices();
    replaceChildren(byId("groups"));
    this.listShown = null;
    replaceChildren(byId("event-list"));
    byId("details").hidden = true;
    byId<HTMLInputElement>("account-input").value = "";
    this.showSignIn();
  }

  private async signedIn(): Promise<void> {
    byId("sign-in").hidden = true;
    byId("account-form").hidden = false;
    byId("session").hidden = false;
    try {
      this.types = (await api.listConnectorTypes({})).connectorTypes;
    } catch (error) {
      const problem = problemOf(error);
      if (problem.reason === "API_KEY_INVALID" || problem.reason === "API_KEY_MISSING") {
        this.signOut();
        replaceChildren(byId("sign-in-problem"), problemBox(problem));
        return;
      }
      notify(problemBox(problem));
    }
    const returned = await this.completeReturn();
    const account = returned ?? session.account();
    if (account !== null && account !== "") {
      const shown = window.location.hash.slice(1);
      if (returned === null && /^[A-Za-z0-9-]+$/.test(shown)) {
        this.selected = `${accountName(account)}/connectors/${shown}`;
      }
      await this.openAccount(account, false);
    } else {
      byId("no-account").hidden = false;
      byId("account-input").focus();
    }
  }

  private async openAccount(account: string, clearSelection = true): Promise<void> {
    session.setAccount(account);
    byId<HTMLInputElement>("account-input").value = account;
    byId("no-account").hidden = true;
    byId("workspace").hidden = false;
    byId("account-title").textContent = account;
    if (account !== this.current) {
      this.current = account;
      if (clearSelection) this.closeDetails();
      replaceChildren(byId("groups"), h("p", { class: "muted loading" }, "Loading connectors…"));
      this.listShown = null;
      byId("groups").setAttribute("aria-busy", "true");
      this.feed.start(account);
    }
    await this.reload();
  }

  // The OAuth return -------------------------------------------------------------------------

  /** Completes an OAuth sign-in the browser came back from: the `state` must be one this tab
   * started (kept in its session), which binds the link to this signed-in user; an unknown
   * state is not sent to the service at all. Returns the account it was for. */
  private async completeReturn(): Promise<string | null> {
    const params = new URLSearchParams(window.location.search);
    const state = params.get("state");
    if (state === null && !params.has("code") && !params.has("error")) return null;
    // Off the address bar at once: a reload must not replay it, and the code is single-use.
    history.replaceState(null, "", window.location.pathname);
    const pending = state === null ? null : session.takeAuthorization(state);
    if (pending === null) {
      notify(
        problemBox(
          {
            reason: "AUTHORIZATION_NOT_STARTED_HERE",
            title: "This sign-in was not started in this browser tab",
            detail: "Nothing was linked. Start it again with Authorize New Connector.",
            metadata: {},
            violations: [],
            cancelled: false,
          },
          { testid: "oauth-problem" },
        ),
      );
      return null;
    }
    const get = (key: string) => params.get(key) ?? "";
    try {
      const connector = await api.completeAuthorization({
        state: state ?? "",
        code: get("code"),
        error: get("error"),
        errorDescription: get("error_description"),
        tenant: get("tenant"),
        adminConsent: get("admin_consent"),
        iss: get("iss"),
      });
      const type = this.typeOf(connector);
      notify(
        success(
          `${pending.connector ? "Reauthorized" : "Linked"} “${connector.displayName}”`,
          `${type?.displayName ?? connector.connectorType} · ${connector.externalAccount?.label ?? ""}`,
          "oauth-success",
        ),
      );
      this.selected = connector.name;
    } catch (error) {
      const problem = problemOf(error);
      const existing = problem.metadata.connector;
      const actions =
        problem.reason === "CONNECTOR_ALREADY_EXISTS" && existing
          ? [existingLink(existing, () => void this.select(existing))]
          : [];
      notify(problemBox(problem, { actions, testid: "oauth-problem" }));
      if (pending.connector) this.selected = pending.connector;
    }
    return pending.account;
  }

  // Rendering -------------------------------------------------------------------------------

  /** Draws the list again. Whoever is in it keeps their place: an open Manage menu is open
   * again with the focus on the same item, and a focused control keeps the focus. */
  private renderList(): void {
    const menu = openMenu(byId("groups"));
    const focused = focusPath();
    replaceChildren(
      byId("groups"),
      renderGroups(this.types, this.connectors, {
        authorize: (type) => authorizeNew(this, type),
        open: (connector) => void this.select(connector.name),
        reauthorize: (connector) => reauthorize(this, connector),
        remove: (connector) => confirmDelete(this, connector),
      }),
    );
    const authorized = this.connectors.filter((c) => c.state === Connector_State.AUTHORIZED).length;
    byId("account-summary").textContent =
      this.connectors.length === 0
        ? "No connectors yet. Authorize one for the service the customer migrates."
        : `${this.connectors.length} connector${this.connectors.length === 1 ? "" : "s"} · ${authorized} authorized · ${this.connectors.length - authorized} need attention`;
    if (this.selected !== null) {
      for (const row of document.querySelectorAll("tr[data-connector]")) {
        row.classList.toggle("selected", row.getAttribute("data-connector") === this.selected);
      }
    }
    if (menu !== null && reopenMenu(menu)) return;
    if (focused !== null) document.querySelector<HTMLElement>(focused)?.focus();
  }

  /** The list could not be read. A malformed account id is the account field's fault: it is
   * marked invalid, described by the problem, and takes the focus. */
  private showListProblem(problem: Problem): void {
    this.listShown = null;
    const box = problemBox(problem, { testid: "list-problem", fields: { parent: "Customer account" } });
    box.id = "list-problem";
    replaceChildren(byId("groups"), box);
    byId("account-summary").textContent = "";
    if (problem.violations.some((violation) => violation.field === "parent")) {
      const input = byId<HTMLInputElement>("account-input");
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "list-problem");
      input.focus();
    }
  }

  /** The account field is fine again (another account was opened). */
  private clearAccountProblem(): void {
    const input = byId<HTMLInputElement>("account-input");
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }

  private closeDetails(): void {
    this.selected = null;
    if (window.location.hash !== "") history.replaceState(null, "", window.location.pathname);
    const panel = byId("details");
    panel.hidden = true;
    delete panel.dataset.connector;
    delete panel.dataset.shown;
    replaceChildren(panel);
    for (const row of document.querySelectorAll("tr.selected")) row.classList.remove("selected");
  }

  private describe(connector: string, connectorType: string): [string, string] {
    const type = this.types.find((t) => t.name === connectorType);
    if (connector === "") return ["the customer account", ""];
    const name = this.names.get(connector) ?? `connector ${lastSegment(connector).slice(0, 8)}…`;
    return [name, type?.displayName ?? connectorType];
  }

  /** A change happened: list again. */
  private onEvent(_event: ConnectorEvent): void {
    this.scheduleReload();
  }

  /** Lists again soon (debounced, as events come in bursts). */
  private scheduleReload(): void {
    window.clearTimeout(this.reloadTimer);
    this.reloadTimer = window.setTimeout(() => void this.reload(), 300);
  }
}

/** The connectors as the page shows them, as one string to compare. */
function shownAs(connectors: Connector[]): string {
  return connectors.map((connector) => toJsonString(ConnectorSchema, connector)).join("\n");
}

/** A selector for the list control that has the focus (its group, row or type, and action),
 * so the same control can take it back after the list is redrawn; null when focus is elsewhere. */
function focusPath(): string | null {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || !byId("groups").contains(active)) return null;
  const group = active.closest("section.group")?.id;
  const action = active.dataset.action;
  if (!group || !action) return null;
  const row = active.closest("tr")?.getAttribute("data-connector");
  const type = active.closest(".type-card")?.getAttribute("data-type");
  const scope = row ? `tr[data-connector="${CSS.escape(row)}"]` : `.type-card[data-type="${CSS.escape(type ?? "")}"]`;
  return `#${CSS.escape(group)} ${scope} [data-action="${CSS.escape(action)}"]`;
}

function start(): void {
  void new ConsolePage().boot();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
