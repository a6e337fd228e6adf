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

const MICROSOFT: [MicrosoftService, string, string][] = [
  [MicrosoftService.AZURE_BLOB_STORAGE, "azure-blob-storage", "Azure Blob Storage"],
  [MicrosoftService.ONEDRIVE_CONSUMER, "onedrive-consumer", "OneDrive Consumer"],
  [
    MicrosoftService.ONEDRIVE_FOR_BUSINESS_ADMINISTRATOR,
    "onedrive-for-business-administrator",
    "OneDrive for Business (Administrator)",
  ],
  [
    MicrosoftService.ONEDRIVE_FOR_BUSINESS_USER,
    "onedrive-for-business-user",
    "OneDrive for Business (User)",
  ],
  [MicrosoftService.SHAREPOINT_ONLINE, "sharepoint-online", "SharePoint Online"],
];

/** The groups, Microsoft services first; empty groups are left out. */
export function groupTypes(types: ConnectorType[]): Group[] {
  const groups: Group[] = MICROSOFT.map(([service, key, title]) => ({
    key,
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

/** The credential field that names the external account a connector is linked to, for the
 * types whose external account id is that field's value. A reauthorization must be for the
 * same account, so its form shows the value and does not let it change.
 *
 * The catalogue API does not say which field that is; until it does, the console knows it
 * here (only Azure's `account_name` is exactly the external account id). */
export function accountField(type: ConnectorType): string | undefined {
  return typeId(type) === "azure-blob-storage" ? "account_name" : undefined;
}

/** Who runs the sign-in page the user is sent to. */
export function providerName(type: ConnectorType): string {
  switch (typeId(type)) {
    case "google-drive":
      return "Google";
    case "dropbox":
      return "Dropbox";
    case "box":
      return "Box";
    default:
      return "Microsoft";
  }
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

/** The deletion advice for `type`. The catalogue API carries none of this yet. */
export function deletionAdvice(type: ConnectorType): DeletionAdvice {
  const kept = (access: string, check: string) => ({ revokes: false, access, check });
  const revoked = (access: string, check: string) => ({ revokes: true, access, check });
  switch (typeId(type)) {
    case "azure-blob-storage":
      return kept(
        "We erase the storage account key we held, but Azure has no way for us to revoke an account key: the key stays valid until it is rotated.",
        "Rotate the key in the Azure portal: the storage account → Security + networking → Access keys → Rotate key.",
      );
    case "amazon-s3":
      return kept(
        "We erase the access key we held, but AWS has no way for us to revoke it: the key stays valid until it is deactivated.",
        "Deactivate or delete the access key in the AWS IAM console.",
      );
    case "onedrive-consumer":
      return kept(
        "We erase our tokens, but Microsoft offers apps no way to revoke a sign-in: the consent stays on the Microsoft account until it is removed there.",
        "Sign in at account.live.com/consent/Manage and remove the app.",
      );
    case "onedrive-for-business-user":
      return kept(
        "We erase our tokens, but Microsoft offers apps no way to revoke a sign-in: the consent stays until it is removed.",
        "The user removes the app at myapps.microsoft.com (or an administrator deletes its enterprise application).",
      );
    case "office-365":
      return kept(
        "We erase our tokens, but the administrator consent stays on the tenant until it is withdrawn there.",
        "An administrator deletes the app in the Microsoft Entra admin center: Enterprise applications → the app → Properties → Delete.",
      );
    case "google-drive":
      return revoked(
        "We revoke the refresh token at Google, then erase it.",
        "The user opens myaccount.google.com/permissions: the app is no longer listed.",
      );
    case "dropbox":
      return revoked(
        "We revoke the token at Dropbox, then erase it.",
        "The user opens dropbox.com/account/connected_apps: the app is no longer listed.",
      );
    case "box":
      return revoked(
        "We revoke the token at Box, then erase it.",
        "The user opens Box's account settings → Apps: the app is no longer listed.",
      );
    case "webdav":
      return kept(
        "We erase the password we held, but a WebDAV server offers no way for us to revoke it.",
        "Change the password at the server.",
      );
    case "sftp":
      return kept(
        "We erase the password or SSH key we held, but an SFTP server offers no way for us to revoke it.",
        "Change the password, or remove the key from the server's authorized keys.",
      );
    default:
      return kept("We erase the secrets we held.", "Check at the cloud service that the access is gone.");
  }
}
