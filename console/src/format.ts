// How values read on the page: dates, states, reasons, event kinds.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  Connector_DeauthorizationReason as Reason,
  Connector_State as State,
  ConnectorEvent_Kind as Kind,
  ConnectorEvent_RevocationOutcome as Outcome,
  type Connector,
  type ConnectorEvent,
} from "./gen/connector/v1/connector_service_pb";
import { h } from "./dom";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const DAY = 24 * 60 * 60 * 1000;

/** A time as a `<time>` element, or a dash when unset. */
export function time(timestamp: Timestamp | undefined, empty = "—"): HTMLElement {
  if (!timestamp) return h("span", { class: "muted" }, empty);
  const date = timestampDate(timestamp);
  return h("time", { datetime: date.toISOString() }, dateTime.format(date));
}

/** The inactivity deadline, flagged when it is under two weeks away. */
export function deadline(connector: Connector): HTMLElement {
  if (connector.state !== State.AUTHORIZED || !connector.inactivityDeadline) {
    return h("span", { class: "muted" }, "—");
  }
  const date = timestampDate(connector.inactivityDeadline);
  const days = Math.ceil((date.getTime() - Date.now()) / DAY);
  const soon = days <= 14;
  return h(
    "span",
    { class: soon ? "deadline soon" : "deadline" },
    time(connector.inactivityDeadline),
    h("span", { class: "sub" }, days > 1 ? `in ${days} days` : days === 1 ? "tomorrow" : "today"),
  );
}

/** The state badge. */
export function stateBadge(connector: Connector): HTMLElement {
  const authorized = connector.state === State.AUTHORIZED;
  return h(
    "span",
    {
      class: authorized ? "badge badge-ok" : "badge badge-error",
      "data-state": authorized ? "authorized" : "deauthorized",
    },
    authorized ? "Authorized" : "Deauthorized",
  );
}

/** Why a connector was deauthorized, as a short phrase. */
export function reasonShort(reason: Reason): string {
  switch (reason) {
    case Reason.INACTIVITY:
      return "inactivity";
    case Reason.REVOKED:
      return "revoked";
    case Reason.EXPIRED:
      return "expired";
    default:
      return "unknown reason";
  }
}

/** Why a connector was deauthorized, in a sentence. */
export function reasonSentence(reason: Reason): string {
  switch (reason) {
    case Reason.INACTIVITY:
      return "No data was transferred with it for 90 days, so its authorization lapsed (inactivity).";
    case Reason.REVOKED:
      return "Our access was revoked at the cloud service, or the credentials were changed there (revoked).";
    case Reason.EXPIRED:
      return "The cloud service let the authorization expire (expired).";
    default:
      return "It lost its authorization.";
  }
}

/** An event's kind as a past-tense verb, and a badge style. */
export function eventWords(event: ConnectorEvent): [verb: string, tone: string] {
  switch (event.kind) {
    case Kind.AUTHORIZED:
      return ["Authorized", "ok"];
    case Kind.REAUTHORIZED:
      return ["Reauthorized", "ok"];
    case Kind.DEAUTHORIZED:
      return [`Deauthorized (${reasonShort(event.deauthorizationReason)})`, "error"];
    case Kind.DELETED:
      return ["Deleted", "neutral"];
    case Kind.ACCOUNT_DELETED:
      return ["Account deleted", "neutral"];
    case Kind.REVOCATION_FINISHED:
      return [`Access ${outcomeWords(event.revocationOutcome)}`, "neutral"];
    default:
      return ["Changed", "neutral"];
  }
}

function outcomeWords(outcome: Outcome): string {
  switch (outcome) {
    case Outcome.REVOKED:
      return "revoked at the provider";
    case Outcome.NOT_SUPPORTED:
      return "erased (the provider cannot revoke)";
    case Outcome.FAILED:
      return "erased (revocation failed)";
    default:
      return "revocation finished";
  }
}
