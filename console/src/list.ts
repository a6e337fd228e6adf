// The account's connectors, grouped as the product text's table (Microsoft service → connector
// type, then the other services). Each connector type offers Authorize New Connector; each
// connector a Manage ▼ menu with Reauthorize and Delete, and its name opens the details panel.

import {
  Connector_State,
  type Connector,
  type ConnectorType,
} from "./gen/connector/v1/connector_service_pb";
import { h } from "./dom";
import { authLabel, groupTypes, typeId, unavailableReason, type Group } from "./catalog";
import { deadline, reasonShort, stateBadge, time } from "./format";
import { lastSegment } from "./api";
import { menuButton } from "./ui";

/** What the list's controls do. */
export interface ListActions {
  authorize(type: ConnectorType): void;
  open(connector: Connector): void;
  reauthorize(connector: Connector): void;
  remove(connector: Connector): void;
}

/** The groups for `types`, each type with its connectors. */
export function renderGroups(
  types: ConnectorType[],
  connectors: Connector[],
  actions: ListActions,
): HTMLElement[] {
  return groupTypes(types).map((group) => renderGroup(group, connectors, actions));
}

function renderGroup(group: Group, connectors: Connector[], actions: ListActions): HTMLElement {
  const count = connectors.filter((c) => group.types.some((t) => t.name === c.connectorType)).length;
  return h(
    "section",
    { class: "group", id: `group-${group.key}`, "aria-labelledby": `group-${group.key}-title` },
    h(
      "div",
      { class: "group-head" },
      h("h2", { id: `group-${group.key}-title` }, group.title),
      h("span", { class: "count", "aria-label": `${count} connectors` }, String(count)),
      h("span", { class: "group-kind" }, group.subtitle),
    ),
    group.types.map((type) =>
      renderType(group, type, connectors.filter((c) => c.connectorType === type.name), actions),
    ),
  );
}

function renderType(
  group: Group,
  type: ConnectorType,
  connectors: Connector[],
  actions: ListActions,
): HTMLElement {
  const key = `${group.key}-${typeId(type)}`;
  const services = type.services.join(" · ");
  // A type this server cannot link (an OAuth type without an app registration) is shown
  // greyed with the reason, and offers no button that would only fail at the provider.
  const unavailable = unavailableReason(type);
  return h(
    "article",
    {
      class: unavailable ? "type-card type-card-unavailable" : "type-card",
      "data-type": typeId(type),
      "data-available": unavailable ? "false" : "true",
      "aria-labelledby": `type-${key}`,
    },
    h(
      "header",
      { class: "type-head" },
      h(
        "div",
        { class: "type-title" },
        h(
          "h3",
          { id: `type-${key}` },
          type.displayName,
          h("span", { class: "chip" }, authLabel(type.authMethod, type)),
        ),
        h("p", { class: "muted" }, type.description),
        group.key === "other" && services && h("p", { class: "services" }, services),
      ),
      unavailable
        ? h("p", { class: "unavailable", "data-testid": "type-unavailable" }, unavailable)
        : h(
            "button",
            {
              type: "button",
              class: "button button-primary",
              "data-action": "authorize",
              "aria-describedby": `type-${key}`,
              onclick: () => actions.authorize(type),
            },
            "Authorize New Connector",
          ),
    ),
    connectors.length === 0
      ? h("p", { class: "empty" }, `No ${type.displayName} connectors yet.`)
      : table(key, connectors, actions),
  );
}

function table(key: string, connectors: Connector[], actions: ListActions): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "connectors" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col" }, "State"),
          h("th", { scope: "col" }, "Authorized"),
          h("th", { scope: "col" }, "Last transfer"),
          h("th", { scope: "col" }, "Inactivity deadline"),
          h("th", { scope: "col" }, "Labels"),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")),
        ),
      ),
      h(
        "tbody",
        {},
        connectors.map((connector) => row(key, connector, actions)),
      ),
    ),
  );
}

function row(key: string, connector: Connector, actions: ListActions): HTMLElement {
  const id = lastSegment(connector.name);
  return h(
    "tr",
    { "data-connector-id": id, "data-connector": connector.name },
    h(
      "td",
      { class: "name-cell" },
      h(
        "button",
        {
          type: "button",
          class: "link",
          "data-action": "open",
          onclick: () => actions.open(connector),
        },
        connector.displayName,
      ),
      h("span", { class: "sub", "data-field": "external-account" }, connector.externalAccount?.label ?? ""),
    ),
    h(
      "td",
      { "data-field": "state" },
      stateBadge(connector),
      connector.state === Connector_State.DEAUTHORIZED &&
        h("span", { class: "sub" }, reasonShort(connector.deauthorizationReason)),
    ),
    h("td", {}, time(connector.authorizeTime)),
    h("td", {}, time(connector.lastTransferTime, "Never")),
    h("td", {}, deadline(connector)),
    h("td", {}, labels(connector)),
    h(
      "td",
      { class: "actions-cell" },
      menuButton("Manage", `manage-${key}-${id}`, [
        { label: "Reauthorize", action: "reauthorize", run: () => actions.reauthorize(connector) },
        { label: "Delete", action: "delete", danger: true, run: () => actions.remove(connector) },
      ]),
    ),
  );
}

/** Labels as `key=value` tags. */
export function labels(connector: Connector): HTMLElement {
  const entries = Object.entries(connector.labels).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return h("span", { class: "muted" }, "—");
  return h(
    "ul",
    { class: "labels" },
    entries.map(([key, value]) => h("li", { class: "tag" }, value ? `${key}=${value}` : key)),
  );
}
