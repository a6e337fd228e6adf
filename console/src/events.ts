// The live timeline of the account's lifecycle events through WatchConnectorEvents (a server
// stream over gRPC-Web). The server replays the events after a cursor and then follows live; a
// watch ends after an hour, and the network can drop it, so the feed reconnects with backoff
// from the last cursor it saw: nothing is missed and nothing shown twice.

import { Code, ConnectError } from "@connectrpc/connect";
import { ConnectorEvent_Kind, type ConnectorEvent } from "./gen/connector/v1/connector_service_pb";
import { accountName, api } from "./api";
import { h, replaceChildren } from "./dom";
import { problemOf } from "./errors";
import { eventWords, time } from "./format";

/** Shown state of the feed. */
type Status = "connecting" | "live" | "reconnecting" | "stopped";

/** Reasons that no retry can fix: the feed stops and says why. */
const FATAL = new Set([
  "API_KEY_MISSING",
  "API_KEY_INVALID",
  "ACCOUNT_ACCESS_DENIED",
  "CAPABILITY_MISSING",
  "INVALID_ARGUMENT",
]);

const MAX_SHOWN = 200;

export class EventFeed {
  private abort: AbortController | null = null;
  private cursor = 0n;

  constructor(
    private readonly list: HTMLOListElement,
    private readonly indicator: HTMLElement,
    /** Describes an event's connector (its display name and type), as far as the page knows. */
    private readonly describe: (connector: string, connectorType: string) => [name: string, type: string],
    /** Called for every new event, so the page can refresh what it shows. */
    private readonly onEvent: (event: ConnectorEvent) => void,
  ) {}

  /** Follows `account` from the beginning of its log. */
  start(account: string): void {
    this.stop();
    this.cursor = 0n;
    replaceChildren(this.list);
    const abort = new AbortController();
    this.abort = abort;
    void this.follow(account, abort.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
  }

  private async follow(account: string, signal: AbortSignal): Promise<void> {
    let failures = 0;
    this.show("connecting");
    while (!signal.aborted) {
      try {
        const stream = api.watchConnectorEvents(
          { parent: accountName(account), afterCursor: this.cursor },
          { signal, onHeader: () => this.show("live") },
        );
        for await (const event of stream) {
          failures = 0;
          this.show("live");
          if (event.cursor <= this.cursor) continue;
          this.cursor = event.cursor;
          this.add(event);
          this.onEvent(event);
        }
        // The server ended the watch (it lasts at most an hour): resume at once.
      } catch (error) {
        if (signal.aborted || ConnectError.from(error).code === Code.Canceled) return;
        const problem = problemOf(error);
        if (FATAL.has(problem.reason)) {
          this.show("stopped", `${problem.title}. ${problem.detail}`);
          return;
        }
        failures += 1;
        this.show("reconnecting");
        const delay =
          problem.retryAfter !== undefined
            ? problem.retryAfter * 1000
            : Math.min(30_000, 500 * 2 ** failures) * (0.75 + Math.random() / 2);
        await sleep(delay, signal);
      }
    }
  }

  /** Shows the names the page knows now on events that came in before it knew them. */
  renameAll(): void {
    for (const item of this.list.querySelectorAll<HTMLElement>("li[data-connector]")) {
      const [name] = this.describe(item.dataset.connector ?? "", "");
      const slot = item.querySelector(".event-name");
      if (slot && slot.textContent !== name) slot.textContent = name;
    }
  }

  private add(event: ConnectorEvent): void {
    const { verb, tone, note } = eventWords(event);
    const [name, type] = this.describe(event.connector, event.connectorType);
    const item = h(
      "li",
      {
        class: `event event-${tone}`,
        "data-cursor": String(event.cursor),
        "data-kind": ConnectorEvent_Kind[event.kind],
        "data-connector": event.connector,
      },
      h("span", { class: "event-dot", "aria-hidden": "true" }),
      h(
        "div",
        { class: "event-body" },
        h("p", { class: "event-title" }, h("span", { class: `event-verb tone-${tone}` }, verb), " ", h("span", { class: "event-name" }, name)),
        note && h("p", { class: "event-note" }, note),
        h("p", { class: "event-meta" }, type, type && " · ", time(event.createTime)),
      ),
    );
    this.list.prepend(item);
    while (this.list.children.length > MAX_SHOWN) this.list.lastElementChild?.remove();
    this.list.closest("section")?.querySelector(".empty")?.remove();
  }

  private show(status: Status, why?: string): void {
    const words: Record<Status, string> = {
      connecting: "Connecting…",
      live: "Live",
      reconnecting: "Reconnecting…",
      stopped: "Stopped",
    };
    this.indicator.dataset.status = status;
    this.indicator.textContent = words[status];
    this.indicator.title = why ?? "";
    const reason = this.list.parentElement?.querySelector<HTMLElement>(".feed-problem");
    if (reason) {
      reason.hidden = why === undefined;
      reason.textContent = why ?? "";
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
