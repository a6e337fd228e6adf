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

/** How an event reads in Activity: a verb put before the connector's name, a tone for its
 * badge, and for some a sentence on what it means for the customer. */
export interface EventWords {
  verb: string;
  tone: "ok" | "error" | "neutral";
  note?: string;
}

/** The words for an event. */
export function eventWords(event: ConnectorEvent): EventWords {
  switch (event.kind) {
    case Kind.AUTHORIZED:
      return { verb: "Authorized", tone: "ok" };
    case Kind.REAUTHORIZED:
      return { verb: "Reauthorized", tone: "ok" };
    case Kind.DEAUTHORIZED:
      return { verb: `Deauthorized (${reasonShort(event.deauthorizationReason)})`, tone: "error" };
    case Kind.DELETED:
      return { verb: "Deleted", tone: "neutral" };
    case Kind.ACCOUNT_DELETED:
      return { verb: "Account deleted", tone: "neutral" };
    case Kind.REVOCATION_FINISHED:
      return revocationWords(event.revocationOutcome);
    default:
      return { verb: "Changed", tone: "neutral" };
  }
}

/** What became of our access after a deletion, in the customer's terms. */
function revocationWords(outcome: Outcome): EventWords {
  switch (outcome) {
    case Outcome.REVOKED:
      return { verb: "Access revoked for", tone: "ok", note: "The cloud service ended our access." };
    case Outcome.NOT_SUPPORTED:
      return {
        verb: "Credentials erased for",
        tone: "neutral",
        note: "The cloud service has no way for us to revoke them: to end the access, change or remove them there.",
      };
    case Outcome.FAILED:
      return {
        verb: "Could not revoke access for",
        tone: "error",
        note: "The cloud service was down or refused. Our copy is erased; the access lapses there on its own.",
      };
    default:
      return { verb: "Access ended for", tone: "neutral" };
  }
}
