// What a person does to connectors: authorize a new one (a credentials form, or the OAuth
// sign-in), reauthorize one, delete one after confirming, try to rename one, test its access.
// Each opens a dialog or acts at once, calls the service, and reports through the Host.

import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  AuthMethod,
  ConnectorSchema,
  CredentialsSchema,
  type Connector,
  type ConnectorType,
  type Credentials,
} from "./gen/connector/v1/connector_service_pb";
import { accountName, api, lastSegment } from "./api";
import { accountField, deletionAdvice, isOAuth, providerName } from "./catalog";
import { h, replaceChildren } from "./dom";
import { problemOf, type Problem } from "./errors";
import { session } from "./session";
import { field, notify, openDialog, problemBox, success, warning } from "./ui";

/** What the actions need from the page. */
export interface Host {
  /** The customer account open now (its id, without `accounts/`). */
  account(): string;
  typeOf(connector: Connector): ConnectorType | undefined;
  /** Lists the connectors again and refreshes the details panel. */
  reload(): Promise<void>;
  /** Opens the details panel on a connector. */
  select(name: string): Promise<void>;
  /** Keeps what Test access found on a connector, so the panel shows it across redraws. */
  keepAccessResult(name: string, box: HTMLElement, deauthorized: boolean): void;
}

/** The path the browser comes back to after signing in at a provider: the console itself,
 * which the server accepts as a return URL whenever it serves the console. */
export function returnUrl(): string {
  return `${window.location.origin}/console/`;
}

const DISPLAY_NAME = "connector.display_name";

/** Authorize New Connector for `type`. */
export function authorizeNew(host: Host, type: ConnectorType): void {
  const oauth = isOAuth(type);
  const nameField = field({
    id: "new-display-name",
    label: "Display name",
    name: "display_name",
    requestField: oauth ? "display_name" : DISPLAY_NAME,
    required: !oauth,
    hint: oauth
      ? "Shown to the customer; it cannot be changed later. Leave empty to use the name of the account that signs in."
      : "Shown to the customer; it cannot be changed later.",
  });
  const body = oauth
    ? [
        nameField,
        signInExplanation(type),
      ]
    : [nameField, ...credentialFields(type)];
  openDialog({
    id: "authorize-dialog",
    title: `Authorize a new ${type.displayName} connector`,
    body,
    submitLabel: oauth ? `Continue to ${providerName(type)}` : "Authorize",
    busyLabel: oauth ? "Opening sign-in…" : "Checking credentials…",
    fields: { ...fieldLabels(type), [DISPLAY_NAME]: "Display name", display_name: "Display name" },
    problemActions: (problem, dialog) => {
      const existing = problem.metadata.connector;
      if (problem.reason !== "CONNECTOR_ALREADY_EXISTS" || !existing) return [];
      return [
        existingLink(existing, () => {
          dialog.close();
          void host.select(existing);
        }),
      ];
    },
    submit: async (form) => {
      const displayName = value(form, "display_name");
      if (oauth) return startSignIn(host, type, displayName);
      try {
        const connector = await api.createConnector({
          parent: accountName(host.account()),
          connector: create(ConnectorSchema, { connectorType: type.name, displayName }),
          credentials: credentialsFrom(form, type),
        });
        notify(
          success(
            `Linked “${connector.displayName}”`,
            `${type.displayName} · ${connector.externalAccount?.label ?? ""}`,
            "linked",
          ),
        );
        await host.reload();
        await host.select(connector.name);
        return null;
      } catch (error) {
        return problemOf(error);
      }
    },
  });
}

/** Reauthorize: new credentials for a credential type, signing in again for an OAuth type. */
export function reauthorize(host: Host, connector: Connector): void {
  const type = host.typeOf(connector);
  if (!type) return;
  const oauth = isOAuth(type);
  const account = connector.externalAccount?.label ?? "the same account";
  const intro = h(
    "p",
    {},
    oauth
      ? `Sign in at ${providerName(type)} again as ${account}. Signing in as another account changes nothing.`
      : `Enter current credentials for ${account}. Credentials of another account change nothing.`,
  );
  const dialog = openDialog({
    id: "reauthorize-dialog",
    title: `Reauthorize “${connector.displayName}”`,
    body: oauth ? [intro] : [intro, ...credentialFields(type, connector)],
    submitLabel: oauth ? `Continue to ${providerName(type)}` : "Reauthorize",
    busyLabel: oauth ? "Opening sign-in…" : "Checking credentials…",
    fields: fieldLabels(type),
    submit: async (form) => {
      if (oauth) return startSignIn(host, type, connector.displayName, connector);
      try {
        const renewed = await api.reauthorizeConnector({
          name: connector.name,
          credentials: credentialsFrom(form, type),
        });
        notify(success(`Reauthorized “${renewed.displayName}”`, undefined, "reauthorized"));
        await host.reload();
        await host.select(renewed.name);
        return null;
      } catch (error) {
        return problemOf(error);
      }
    },
  });
  // The first field to fill in, not the account name that cannot change.
  dialog.querySelector<HTMLElement>("input:not([readonly]), textarea")?.focus();
}

/** Delete, after a confirmation saying what deleting means: whether our access is revoked at
 * the cloud service, and what the customer does to be sure it is gone. */
export function confirmDelete(host: Host, connector: Connector): void {
  const type = host.typeOf(connector);
  const advice = deletionAdvice(type);
  openDialog({
    id: "delete-dialog",
    title: `Delete “${connector.displayName}”?`,
    danger: true,
    body: [
      h(
        "ul",
        { class: "consequences" },
        h(
          "li",
          {},
          h("strong", {}, "Deleting is permanent. "),
          "The connector and the secrets it holds are destroyed and cannot be restored; to use this account again, authorize a new connector.",
        ),
        h(
          "li",
          {},
          h("strong", {}, advice.revokes ? "Our access is revoked. " : "Our access cannot be revoked. "),
          advice.access,
        ),
        h(
          "li",
          {},
          h("strong", {}, advice.revokes ? "How to check. " : "How to end the access. "),
          advice.check,
        ),
      ),
      h(
        "p",
        { class: "muted" },
        `${type?.displayName ?? "Connector"} · ${connector.externalAccount?.label ?? ""}`,
      ),
    ],
    submitLabel: "Delete permanently",
    busyLabel: "Deleting…",
    submit: async () => {
      try {
        await api.deleteConnector({ name: connector.name, etag: connector.etag });
        const title = `Deleted “${connector.displayName}”`;
        notify(
          advice.revokes
            ? success(title, "Our access is being revoked at the cloud service; Activity shows when it is done.", "deleted")
            : warning(title, `Nothing was revoked at the cloud service. ${advice.check}`, "deleted"),
        );
        await host.reload();
        return null;
      } catch (error) {
        return problemOf(error);
      }
    },
  });
}

/** A link to the connector that already exists for an external account, which `show` opens
 * in the details panel (the address also names it, as the panel's own address does). */
export function existingLink(connector: string, show: () => void): HTMLElement {
  return h(
    "a",
    {
      class: "button",
      href: `#${lastSegment(connector)}`,
      "data-action": "show-existing",
      "data-connector": connector,
      onclick: (event: Event) => {
        event.preventDefault();
        show();
      },
    },
    "Open the existing connector",
  );
}

/** Asks the service to rename the connector, which it refuses (DISPLAY_NAME_IMMUTABLE): the
 * explanation shown is the service's answer, not only the page's text. */
export async function tryRename(connector: Connector, slot: HTMLElement): Promise<void> {
  try {
    await api.updateConnector({
      connector: create(ConnectorSchema, {
        name: connector.name,
        displayName: connector.displayName,
      }),
      updateMask: { paths: ["display_name"] },
    });
    // The service renamed nothing (the name sent is the current one) yet did not refuse.
    replaceChildren(slot, h("p", { class: "note" }, "The display name is unchanged."));
  } catch (error) {
    const problem = problemOf(error);
    replaceChildren(slot, problemBox(problem, { testid: "rename-problem" }));
  }
}

/** Gets a short-lived credential to prove the connector works. The credential is dropped at
 * once, never shown. A deauthorized connector answers CONNECTOR_DEAUTHORIZED: its message and
 * a Reauthorize button are shown. */
export async function testAccess(host: Host, connector: Connector, slot: HTMLElement): Promise<void> {
  replaceChildren(slot, h("p", { class: "muted", role: "status" }, "Testing access…"));
  try {
    const token = await api.getAccessToken({ name: connector.name });
    const until = token.expireTime ? timestampDate(token.expireTime).toLocaleTimeString() : "";
    const box = success(
      "Access works",
      `The cloud service issued a short-lived credential${until ? `, valid until ${until}` : ""}. It was not kept.`,
      "access-ok",
    );
    replaceChildren(slot, box);
    host.keepAccessResult(connector.name, box, false);
  } catch (error) {
    const problem = problemOf(error);
    const actions =
      problem.reason === "CONNECTOR_DEAUTHORIZED"
        ? [
            h(
              "button",
              {
                type: "button",
                class: "button button-primary",
                "data-action": "reauthorize",
                onclick: () => reauthorize(host, connector),
              },
              "Reauthorize",
            ),
          ]
        : [];
    const box = problemBox(problem, { actions, testid: "access-problem" });
    replaceChildren(slot, box);
    const deauthorized = problem.reason === "CONNECTOR_DEAUTHORIZED";
    host.keepAccessResult(connector.name, box, deauthorized);
    // The state changed under the page: show it everywhere.
    if (deauthorized) await host.reload();
  }
}

/** Starts the OAuth sign-in with the orchestrator-completes flow: the state goes into this
 * tab's session with what is needed to finish, then the browser goes to the provider. */
async function startSignIn(
  host: Host,
  type: ConnectorType,
  displayName: string,
  connector?: Connector,
): Promise<Problem | null> {
  const account = host.account();
  try {
    const started = connector
      ? await api.startReauthorization({
          name: connector.name,
          returnUrl: returnUrl(),
          orchestratorCompletes: true,
        })
      : await api.startAuthorization({
          parent: accountName(account),
          connectorType: type.name,
          displayName,
          returnUrl: returnUrl(),
          orchestratorCompletes: true,
        });
    const state = new URL(started.authorizationUrl).searchParams.get("state");
    if (!state) throw new Error("the authorization URL carries no state");
    session.rememberAuthorization(state, {
      account,
      connectorType: type.name,
      connector: connector?.name,
      displayName,
      startedAt: Date.now(),
    });
    window.location.assign(started.authorizationUrl);
    // The page is leaving: keep the dialog busy rather than closing it.
    return await new Promise<never>(() => undefined);
  } catch (error) {
    return problemOf(error);
  }
}

function signInExplanation(type: ConnectorType): HTMLElement {
  const admin = type.authMethod === AuthMethod.OAUTH2_ADMIN_CONSENT;
  return h(
    "div",
    { class: "explain" },
    h(
      "p",
      {},
      `You will go to ${providerName(type)} to sign in and consent, then come back here, where the link is completed.`,
    ),
    admin &&
      h(
        "p",
        {},
        `An administrator of the organization must sign in: the consent covers every user in it, for ${type.services.join(" and ")}.`,
      ),
  );
}

/** One input per credential field, in the type's order; secrets masked. Reauthorizing
 * `connector`, the field that names its account shows that account and cannot be changed. */
function credentialFields(type: ConnectorType, connector?: Connector): HTMLElement[] {
  const fixed = connector?.externalAccount?.id ? accountField(type) : undefined;
  return type.credentialFields.map((credential) => {
    const same = credential.name === fixed;
    return field({
      id: `credential-${credential.name}`,
      label: credential.displayName,
      name: credential.name,
      requestField: `credentials.fields.values.${credential.name}`,
      required: credential.required,
      secret: credential.secret,
      multiline: credential.name === "private_key",
      hint: same ? "The account this connector is linked to; it cannot change." : credential.validationHint,
      value: same ? connector?.externalAccount?.id : undefined,
      readonly: same,
    });
  });
}

/** Request fields to the labels of the form. */
function fieldLabels(type: ConnectorType): Record<string, string> {
  return Object.fromEntries(
    type.credentialFields.map((credential) => [
      `credentials.fields.values.${credential.name}`,
      credential.displayName,
    ]),
  );
}

/** The generic `fields` credentials: every credential type takes them (Azure too, as
 * `account_name` and `account_key`), so the form needs no knowledge of the type. Empty
 * optional fields are left out. */
function credentialsFrom(form: HTMLFormElement, type: ConnectorType): Credentials {
  const values: Record<string, string> = {};
  for (const credential of type.credentialFields) {
    // Surrounding blanks in a pasted name or URL are a slip; a secret is sent exactly.
    const raw = value(form, credential.name);
    const entered = credential.secret ? raw : raw.trim();
    if (entered !== "" || credential.required) values[credential.name] = entered;
  }
  return create(CredentialsSchema, { kind: { case: "fields", value: { values } } });
}

function value(form: HTMLFormElement, name: string): string {
  const control = form.elements.namedItem(name);
  if (control instanceof HTMLInputElement || control instanceof HTMLTextAreaElement) {
    return control.value;
  }
  return "";
}
