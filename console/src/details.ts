// The details panel of one connector: every field the service shows, the display name with why
// it cannot be edited, and for a deauthorized connector the error, its reason and a prominent
// Reauthorize button.

import {
  Connector_State as State,
  type Connector,
  type ConnectorType,
} from "./gen/connector/v1/connector_service_pb";
import { h, type Child } from "./dom";
import { authLabel } from "./catalog";
import { deadline, reasonSentence, reasonShort, stateBadge, time } from "./format";
import { labels } from "./list";

/** What the panel's buttons do. */
export interface DetailsActions {
  close(): void;
  rename(connector: Connector, slot: HTMLElement): void;
  reauthorize(connector: Connector): void;
  remove(connector: Connector): void;
  testAccess(connector: Connector, slot: HTMLElement): void;
}

/** The panel's content for `connector`. */
export function renderDetails(
  connector: Connector,
  type: ConnectorType | undefined,
  actions: DetailsActions,
): Child[] {
  const deauthorized = connector.state === State.DEAUTHORIZED;
  const renameSlot = h("div", { id: "rename-result", "aria-live": "polite" });
  const accessSlot = h("div", { id: "access-result", "aria-live": "polite" });
  const reauthorizeButton = (id: string, primary: boolean) =>
    h(
      "button",
      {
        type: "button",
        id,
        class: primary ? "button button-primary" : "button",
        onclick: () => actions.reauthorize(connector),
      },
      "Reauthorize",
    );
  return [
    h(
      "div",
      { class: "card-head" },
      h(
        "div",
        {},
        h("p", { class: "eyebrow" }, type?.displayName ?? connector.connectorType),
        h("h2", { id: "details-title", tabindex: "-1" }, connector.displayName),
      ),
      h(
        "button",
        {
          type: "button",
          class: "icon-button",
          id: "details-close",
          "aria-label": "Close details",
          onclick: () => actions.close(),
        },
        "×",
      ),
    ),
    deauthorized &&
      h(
        "div",
        {
          class: "alert alert-error",
          role: "alert",
          id: "deauthorized-alert",
          "data-reason": reasonShort(connector.deauthorizationReason),
        },
        h("p", { class: "alert-title" }, "This connector is deauthorized"),
        h("p", {}, reasonSentence(connector.deauthorizationReason)),
        h(
          "p",
          {},
          "Nothing can use it until it is reauthorized for the same account; it keeps its name.",
        ),
        h("div", { class: "alert-actions" }, reauthorizeButton("deauthorized-reauthorize", true)),
      ),
    // What Test access found, up top: a lost authorization matters more than the facts.
    accessSlot,
    h(
      "div",
      { class: "display-name" },
      h(
        "div",
        {},
        h("span", { class: "term" }, "Display name"),
        h("span", { id: "details-display-name", class: "value" }, connector.displayName),
      ),
      h(
        "button",
        {
          type: "button",
          class: "button button-small",
          id: "rename-button",
          "aria-describedby": "rename-note",
          onclick: () => actions.rename(connector, renameSlot),
        },
        "Rename",
      ),
    ),
    h(
      "p",
      { class: "note", id: "rename-note" },
      "The display name cannot be changed: to rename, delete and add again.",
    ),
    renameSlot,
    h(
      "dl",
      { class: "facts" },
      fact("State", stateBadge(connector)),
      deauthorized && fact("Deauthorized", time(connector.deauthorizeTime)),
      fact("External account", connector.externalAccount?.label || "—"),
      connector.externalAccount?.hostKeyFingerprint &&
        fact("Host key", h("code", {}, connector.externalAccount.hostKeyFingerprint)),
      fact("Authentication", authLabel(connector.authMethod, type)),
      fact("Created", time(connector.createTime)),
      fact("Authorized", time(connector.authorizeTime)),
      fact("Last transfer", time(connector.lastTransferTime, "Never")),
      fact("Inactivity deadline", deadline(connector)),
      fact("Labels", labels(connector)),
      fact("Resource name", h("code", { id: "details-name" }, connector.name)),
    ),
    h(
      "div",
      { class: "panel-actions" },
      !deauthorized &&
        h(
          "button",
          {
            type: "button",
            class: "button",
            id: "test-access",
            onclick: () => actions.testAccess(connector, accessSlot),
          },
          "Test access",
        ),
      !deauthorized && reauthorizeButton("details-reauthorize", false),
      h(
        "button",
        {
          type: "button",
          class: "button button-danger-outline",
          id: "details-delete",
          onclick: () => actions.remove(connector),
        },
        "Delete…",
      ),
    ),
  ];
}

function fact(term: string, value: Node | string): HTMLElement[] {
  return [h("dt", {}, term), h("dd", {}, value)] as HTMLElement[];
}
