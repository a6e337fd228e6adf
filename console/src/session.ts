// What the console keeps between page loads: only in sessionStorage, so it lives as long as the
// browser tab and is never sent anywhere but as the bearer of this origin's calls. Nothing goes
// to localStorage or cookies.

const API_KEY = "connector-console.api-key";
const ACCOUNT = "connector-console.account";
const PENDING = "connector-console.authorization.";

/** An OAuth authorization this tab started, kept under its `state` until the browser returns. */
export interface PendingAuthorization {
  /** The customer account id (without `accounts/`). */
  account: string;
  /** `connectorTypes/{id}`. */
  connectorType: string;
  /** For a reauthorization: the connector's resource name. */
  connector?: string;
  /** The display name asked for (a new connector) or held (a reauthorization). */
  displayName: string;
  /** When it was started, in milliseconds since the epoch. */
  startedAt: number;
}

export const session = {
  apiKey(): string | null {
    return sessionStorage.getItem(API_KEY);
  },
  setApiKey(key: string): void {
    sessionStorage.setItem(API_KEY, key);
  },
  /** Signing out forgets the key, the account and any authorization in flight. */
  clear(): void {
    sessionStorage.clear();
  },
  account(): string | null {
    return sessionStorage.getItem(ACCOUNT);
  },
  setAccount(account: string): void {
    sessionStorage.setItem(ACCOUNT, account);
  },
  rememberAuthorization(state: string, pending: PendingAuthorization): void {
    sessionStorage.setItem(PENDING + state, JSON.stringify(pending));
  },
  /** The authorization started under `state` in this tab, removed so it completes once. */
  takeAuthorization(state: string): PendingAuthorization | null {
    const stored = sessionStorage.getItem(PENDING + state);
    sessionStorage.removeItem(PENDING + state);
    if (stored === null) return null;
    try {
      return JSON.parse(stored) as PendingAuthorization;
    } catch {
      return null;
    }
  },
};
