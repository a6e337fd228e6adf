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

/** How a type authenticates, as a short label. */
export function authLabel(method: AuthMethod): string {
  switch (method) {
    case AuthMethod.ACCOUNT_KEY:
      return "Access key";
    case AuthMethod.OAUTH2_DELEGATED:
      return "User sign-in";
    case AuthMethod.OAUTH2_ADMIN_CONSENT:
      return "Administrator consent";
    case AuthMethod.PASSWORD:
      return "Password or key";
    default:
      return "Other";
  }
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

/** What deleting means at the cloud service, and how the customer can check: one sentence for
 * our access, one for checking (see the README's Revocation and OAuth sections). */
export function revocationAdvice(type: ConnectorType): [access: string, check: string] {
  switch (typeId(type)) {
    case "azure-blob-storage":
      return [
        "We erase the storage account key we held. Azure has no way for us to revoke an account key, so the key itself stays valid.",
        "To be sure nothing can use it, rotate the key in the Azure portal: the storage account → Security + networking → Access keys → Rotate key.",
      ];
    case "amazon-s3":
      return [
        "We erase the access key we held. AWS has no way for us to revoke it.",
        "To be sure, deactivate or delete the access key in the AWS IAM console.",
      ];
    case "onedrive-consumer":
      return [
        "We erase our tokens. Microsoft offers apps no way to revoke a sign-in, so the consent stays on the Microsoft account until it is removed there.",
        "To remove the app's access, sign in at account.live.com/consent/Manage and remove it.",
      ];
    case "onedrive-for-business-user":
      return [
        "We erase our tokens. Microsoft offers apps no way to revoke a sign-in.",
        "To remove the app's access, the user removes it at myapps.microsoft.com (or an administrator deletes its enterprise application).",
      ];
    case "office-365":
      return [
        "We erase our tokens. The administrator consent stays on the tenant until it is withdrawn there.",
        "To withdraw it, an administrator deletes the app in the Microsoft Entra admin center: Enterprise applications → the app → Properties → Delete.",
      ];
    case "google-drive":
      return [
        "We revoke the refresh token at Google, then erase it.",
        "To check, the user opens myaccount.google.com/permissions: the app is no longer listed.",
      ];
    case "dropbox":
      return [
        "We revoke the token at Dropbox, then erase it.",
        "To check, the user opens dropbox.com/account/connected_apps: the app is no longer listed.",
      ];
    case "box":
      return [
        "We revoke the token at Box, then erase it.",
        "To check, the user opens Box's account settings → Apps: the app is no longer listed.",
      ];
    case "webdav":
      return [
        "We erase the password we held. A WebDAV server offers no way for us to revoke it.",
        "To be sure, change the password at the server.",
      ];
    case "sftp":
      return [
        "We erase the password or SSH key we held. An SFTP server offers no way for us to revoke it.",
        "To be sure, change the password or remove the key from the server's authorized keys.",
      ];
    default:
      return ["We erase the secrets we held.", "Check at the cloud service that the access is gone."];
  }
}
