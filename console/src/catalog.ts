// The connector types arranged as the product text's table: a group per Microsoft service, in
// the order the API lists those services, holding the connector types that serve it (a type that
// serves several services, such as Office 365 for both OneDrive for Business (Administrator) and
// SharePoint Online, appears under each), then one group for the services beyond Microsoft.

import {
  AuthMethod,
  MicrosoftService,
  type ConnectorType,
} from "./gen/connector/v1/connector_service_pb";
import { lastSegment } from "./api";

/** One group of the page. */
export interface Group {
  /** Stable id, used in element ids: `onedrive-consumer`, …, `other`. */
  key: string;
  title: string;
  /** A sentence under the title. */
  subtitle: string;
  types: ConnectorType[];
}

/** The Microsoft services in the API's order, with their titles. A group's key is the
 * service's enum name in kebab case (`AZURE_BLOB_STORAGE` → `azure-blob-storage`), so the
 * console names no connector type: some services share their letters with one. */
const MICROSOFT: [MicrosoftService, string][] = [
  [MicrosoftService.AZURE_BLOB_STORAGE, "Azure Blob Storage"],
  [MicrosoftService.ONEDRIVE_CONSUMER, "OneDrive Consumer"],
  [MicrosoftService.ONEDRIVE_FOR_BUSINESS_ADMINISTRATOR, "OneDrive for Business (Administrator)"],
  [MicrosoftService.ONEDRIVE_FOR_BUSINESS_USER, "OneDrive for Business (User)"],
  [MicrosoftService.SHAREPOINT_ONLINE, "SharePoint Online"],
];

function serviceKey(service: MicrosoftService): string {
  return MicrosoftService[service].toLowerCase().replace(/_/g, "-");
}

/** The groups, Microsoft services first; empty groups are left out. */
export function groupTypes(types: ConnectorType[]): Group[] {
  const groups: Group[] = MICROSOFT.map(([service, title]) => ({
    key: serviceKey(service),
    title,
    subtitle: "Microsoft service",
    types: types.filter((type) => type.microsoftServices.includes(service)),
  }));
  groups.push({
    key: "other",
    title: "Other services",
    subtitle: "Cloud storage and file servers beyond Microsoft",
    types: types.filter((type) => type.microsoftServices.length === 0),
  });
  return groups.filter((group) => group.types.length > 0);
}

/** `azure-blob-storage` for `connectorTypes/azure-blob-storage`. */
export function typeId(type: ConnectorType | string): string {
  return lastSegment(typeof type === "string" ? type : type.name);
}

/** Whether connectors of this type are linked by signing in at the provider. */
export function isOAuth(type: ConnectorType): boolean {
  return (
    type.authMethod === AuthMethod.OAUTH2_DELEGATED ||
    type.authMethod === AuthMethod.OAUTH2_ADMIN_CONSENT
  );
}

/** How a type authenticates, as a short label. A password type says "or SSH key" only when its
 * form offers a private key (SFTP does, WebDAV does not). */
export function authLabel(method: AuthMethod, type?: ConnectorType): string {
  switch (method) {
    case AuthMethod.ACCOUNT_KEY:
      return "Access key";
    case AuthMethod.OAUTH2_DELEGATED:
      return "User sign-in";
    case AuthMethod.OAUTH2_ADMIN_CONSENT:
      return "Administrator consent";
    case AuthMethod.PASSWORD:
      return type?.credentialFields.some((field) => field.name === "private_key")
        ? "Password or SSH key"
        : "Password";
    default:
      return "Other";
  }
}

/** The credential field that names the external account a connector is linked to (the
 * catalogue marks it `identifies_account`: Azure's `account_name`). A reauthorization must be
 * for the same account, so its form shows the value and does not let it change. */
export function accountField(type: ConnectorType): string | undefined {
  return type.credentialFields.find((field) => field.identifiesAccount)?.name;
}

/** Who runs the sign-in page the user is sent to, as the catalogue names it. */
export function providerName(type: ConnectorType): string {
  return type.identityProvider || "the provider";
}

/** Why a type's card offers no Authorize button, or undefined when this server can link it. */
export function unavailableReason(type: ConnectorType): string | undefined {
  return type.configured
    ? undefined
    : "Not set up on this server: an operator must add an app registration.";
}

/** What deleting means for our access at the cloud service, and what the customer does to
 * make sure it is gone (see the README's Revocation and OAuth sections). */
export interface DeletionAdvice {
  /** Whether deleting revokes our access at the cloud service (only some providers can). */
  revokes: boolean;
  /** What happens to what we held, in a sentence that claims no more than happens. */
  access: string;
  /** What the customer does: check that the access is gone, or end it where we cannot. */
  check: string;
}

/** The deletion advice for `type`, as the catalogue words it; a type whose entry carries none
 * (or an unknown type) gets the sentences that hold for every type. */
export function deletionAdvice(type: ConnectorType | undefined): DeletionAdvice {
  const deletion = type?.deletion;
  return {
    revokes: deletion?.revokesAccess ?? false,
    access: deletion?.access || "We erase the secrets we held.",
    check: deletion?.check || "Check at the cloud service that the access is gone.",
  };
}
