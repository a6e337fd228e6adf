// Failed calls in plain words. The service puts a stable reason in google.rpc.ErrorInfo, a
// sentence for people in LocalizedMessage where it has one, and the wrong fields in BadRequest
// (all in `grpc-status-details-bin`, decoded with the console's own google.rpc messages). The
// console shows those, mapped through the table below (the README's Errors table), and never the
// status's developer message.

import { Code, ConnectError } from "@connectrpc/connect";
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  LocalizedMessageSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb";
import { StatusSchema } from "./gen/google/rpc/status_pb";

/** One wrong request field. */
export interface Violation {
  field: string;
  description: string;
}

/** A failed call, ready to show. */
export interface Problem {
  /** The ErrorInfo reason, or a stand-in derived from the status code. */
  reason: string;
  /** A short headline. */
  title: string;
  /** What happened and what to do, in a sentence or two. */
  detail: string;
  /** The service's own sentence for people (LocalizedMessage), when it sent one. */
  localized?: string;
  /** The ErrorInfo metadata, for example `connector` or `deauthorization_reason`. */
  metadata: Record<string, string>;
  violations: Violation[];
  /** Seconds to wait before trying again (RetryInfo). */
  retryAfter?: number;
  /** The call was cancelled by the console itself (an aborted watch): show nothing. */
  cancelled: boolean;
}

type Words = [title: string, detail: string | ((metadata: Record<string, string>) => string)];

const REASONS: Record<string, Words> = {
  INVALID_ARGUMENT: ["Some values are not valid", "Correct the highlighted fields and try again."],
  MALFORMED_REQUEST: ["The service could not read the request", "Reload the page and try again."],
  CREDENTIALS_REJECTED: [
    "The cloud service refused these credentials",
    "Nothing was saved. Check that the account name is right and the key is current.",
  ],
  CREDENTIALS_TYPE_MISMATCH: [
    "These credentials belong to another connector type",
    "Nothing was saved.",
  ],
  DISPLAY_NAME_IMMUTABLE: [
    "The display name cannot be changed",
    "To rename, delete and add again.",
  ],
  CONNECTOR_NOT_FOUND: [
    "This connector does not exist",
    "It may have been deleted, or your API key may not see it.",
  ],
  CONNECTOR_TYPE_NOT_FOUND: ["This connector type does not exist", "Reload the page."],
  CONNECTOR_ALREADY_EXISTS: [
    "This account is already linked",
    "The customer account already has a connector for this external account. Reauthorize that one instead of adding another.",
  ],
  ACCOUNT_MISMATCH: [
    "You signed in with a different account",
    (metadata) =>
      `A connector is reauthorized with the account it is linked to${metadata.external_account ? ` (${metadata.external_account})` : ""}. Nothing changed.`,
  ],
  CONNECTOR_DEAUTHORIZED: [
    "This connector lost its authorization",
    "Reauthorize it to use it again.",
  ],
  HOST_KEY_CHANGED: [
    "The server's host key changed",
    "Reauthorize the connector with the new host key fingerprint if you expect the change.",
  ],
  OAUTH_AUTHORIZATION_REQUIRED: [
    "This connector type links by signing in",
    "Use Authorize New Connector and sign in at the cloud service.",
  ],
  CREDENTIALS_REQUIRED: [
    "This connector type links with credentials",
    "Use Authorize New Connector and enter the credentials.",
  ],
  CONNECTOR_TYPE_NOT_CONFIGURED: [
    "This connector type is not set up on this service",
    "An operator must configure its app registration first.",
  ],
  AUTHORIZATION_STATE_INVALID: [
    "This sign-in cannot be completed",
    "It was already used or is unknown to the service. Start again.",
  ],
  AUTHORIZATION_EXPIRED: ["The sign-in took too long", "It expires after ten minutes. Start again."],
  AUTHORIZATION_CODE_REJECTED: [
    "The sign-in could not be verified",
    "The cloud service's answer was refused, so nothing was linked. Start again.",
  ],
  ADMIN_REQUIRED: [
    "An administrator must sign in",
    "A Microsoft 365 tenant is linked by someone who may consent for the whole tenant (a Global, Privileged Role, Cloud Application or Application Administrator). Nothing was linked.",
  ],
  ACCESS_DENIED: ["Consent was not given", "The sign-in was cancelled or declined, so nothing was linked."],
  ETAG_MISMATCH: ["Someone changed this connector meanwhile", "Look at it again, then retry."],
  AUTHORIZATION_INTERRUPTED: [
    "The sign-in was interrupted",
    "The cloud service or the database failed while linking. Start the authorization again.",
  ],
  CONCURRENT_MODIFICATION: ["The service was busy with this connector", "Try again."],
  REQUEST_TIMEOUT: ["The service took too long to answer", "Try again."],
  PROVIDER_UNAVAILABLE: [
    "The cloud service cannot be reached right now",
    "Nothing changed. Try again in a moment.",
  ],
  DATABASE_UNAVAILABLE: ["The service is temporarily unavailable", "Try again in a moment."],
  API_KEY_MISSING: ["Sign in first", "Paste an API key to use the console."],
  API_KEY_INVALID: ["This API key is not accepted", "Sign out and sign in with a valid key."],
  API_KEY_AMBIGUOUS: ["The request carried two API keys", "Reload the page."],
  ACCOUNT_ACCESS_DENIED: [
    "Your API key may not use this customer account",
    "Pick an account your key is scoped to, or sign in with another key.",
  ],
  CAPABILITY_MISSING: [
    "Your API key may not do this",
    (metadata) =>
      `It needs the ${metadata.capability ?? "right"} capability. Ask an operator for a key that has it.`,
  ],
  REQUEST_TOO_LARGE: ["The request is too large", "Shorten the values and try again."],
  OAUTH_CLIENT_REJECTED: [
    "The cloud service refuses this service's app registration",
    "An operator must fix the connector type's client secret. No connector was changed.",
  ],
  OVERLOADED: ["The service is busy", "Try again in a moment."],
  TOO_MANY_WATCHES: [
    "Too many live views are open",
    "Close other console tabs for this account; the activity feed retries by itself.",
  ],
  USE_REVEAL_CREDENTIALS: [
    "This connector has no short-lived credential",
    "Workers get its stored credentials with RevealConnectorCredentials instead.",
  ],
  USE_GET_ACCESS_TOKEN: ["This connector hands out short-lived credentials", "Use GetAccessToken."],
  INTERNAL: ["Something went wrong in the service", "It was logged for the operators. Try again later."],
};

/** Stand-ins for a status without ErrorInfo (the proxy or network failed, not the service). */
const CODES: Partial<Record<Code, Words>> = {
  [Code.Unavailable]: [
    "The service cannot be reached",
    "Check the network connection; the console retries where it can.",
  ],
  [Code.Unauthenticated]: ["This API key is not accepted", "Sign out and sign in with a valid key."],
  [Code.PermissionDenied]: ["Not allowed", "Your API key may not do this."],
  [Code.DeadlineExceeded]: ["The service took too long to answer", "Try again."],
  [Code.Unimplemented]: [
    "The service does not offer this",
    "The console and the service may be of different versions. Reload the page.",
  ],
};

/** The Problem a failed call stands for. */
export function problemOf(error: unknown): Problem {
  const failure = ConnectError.from(error);
  const details = detailsOf(failure);
  const info = details(ErrorInfoSchema)[0];
  const localized = details(LocalizedMessageSchema)[0]?.message || undefined;
  const violations = details(BadRequestSchema).flatMap((bad) =>
    bad.fieldViolations.map(({ field, description }) => ({ field, description })),
  );
  const retry = details(RetryInfoSchema)[0]?.retryDelay;
  const metadata = info?.metadata ?? {};
  const reason = info?.reason || `CODE_${Code[failure.code].toUpperCase()}`;
  const words = REASONS[info?.reason ?? ""] ??
    CODES[failure.code] ?? ["Something went wrong", "Try again; reload the page if it persists."];
  const [title, detail] = words;
  return {
    reason,
    title,
    detail: typeof detail === "function" ? detail(metadata) : detail,
    localized,
    metadata,
    violations,
    retryAfter: retry ? Number(retry.seconds) + retry.nanos / 1e9 : undefined,
    cancelled: failure.code === Code.Canceled,
  };
}

/** A lookup of one kind of detail. connect decodes `grpc-status-details-bin` itself; should a
 * status arrive with the header but no parsed details, it is decoded here as google.rpc.Status. */
function detailsOf(failure: ConnectError) {
  let packed: Any[] | null = null;
  if (failure.details.length === 0) {
    const header = failure.metadata.get("grpc-status-details-bin");
    if (header) {
      try {
        packed = fromBinary(StatusSchema, base64Bytes(header)).details;
      } catch {
        packed = [];
      }
    }
  }
  return <Desc extends DescMessage>(schema: Desc): MessageShape<Desc>[] => {
    if (packed === null) return failure.findDetails(schema);
    return packed.flatMap((any) => {
      const message = anyUnpack(any, schema);
      return message ? [message] : [];
    });
  };
}

function base64Bytes(text: string): Uint8Array {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(padded + "=".repeat((4 - (padded.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
