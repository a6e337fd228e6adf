//! The connectors console in headless Chromium, against the real server (gRPC-Web on its gRPC
//! port), Azurite and the identity emulator: sign in with an API key, open a customer account,
//! link an Azure connector with the credentials form and a OneDrive connector through the
//! emulator's sign-in page (the console completes the authorization when the browser comes
//! back), see each in its group, try to rename and get the service's refusal, reauthorize,
//! lose the authorization at the provider and see the error with its reauthorize prompt after a
//! reload, reauthorize from there, delete after the confirmation, and watch events arrive live.
//! Along the way: every control has an accessible name (on the page and in each dialog), and the
//! Manage ▼ menu and its delete confirmation work by keyboard alone; a live update that redraws
//! the list keeps an open menu open and gives the focus back to the redrawn Manage button when
//! a dialog closes; an invalid account id marks the account field; "already linked" links to
//! the connector; Azure's reauthorization keeps the account name; success notices go away;
//! the delete dialog, its notice and Activity do not claim a revocation that cannot happen; and
//! at a phone's width Sign out stays on screen.
//!
//! A screenshot of each step goes to `target/console-screenshots/{backend}/NN-step.png`.

use std::{path::PathBuf, time::Instant};

use chrono::Duration;
use connector_client::pb;
use connector_tests::{
    ADMIN_KEY, Azurite, Backend, ServerOptions, TestServer, azure_create,
    browser::{Browser, PAGE_WAIT},
    oauth_options, on_both_backends, unique_account,
};
use identity_emulator::{Emulator, fixtures};
use serde_json::json;
use tonic::Code;

on_both_backends!(the_console_walks_every_flow);

/// A test run leaves no browser behind: dropping a `Browser` ends its WebDriver session, which
/// closes Chromium (killing ChromeDriver alone left Chromium running, orphaned).
#[tokio::test]
async fn a_dropped_browser_leaves_no_chromium_running() {
    let browser = Browser::start().await;
    browser.open("about:blank").await;
    let profile = browser.profile().to_string_lossy().into_owned();
    assert!(
        !processes_naming(&profile).is_empty(),
        "Chromium runs with the session's profile {profile}"
    );
    drop(browser);
    // Chromium's processes exit as the session ends: a bounded poll on /proc, not a sleep.
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let left = processes_naming(&profile);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Chromium still running after the Browser was dropped: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The processes whose command line contains `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
        })
        .collect()
}

/// A browser on the console of one server, saving numbered screenshots.
struct Console {
    browser: Browser,
    endpoint: String,
    shots: PathBuf,
    step: u32,
}

impl Console {
    async fn shot(&mut self, name: &str) {
        self.step += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        self.browser.screenshot(&path).await;
    }

    /// Signs in at the emulator as Bob and consents; waits until the browser is back on the
    /// console.
    async fn consent_as_bob(&mut self, shot: Option<&str>) {
        let bob = format!("#account option[value='{}']", fixtures::BOB_UPN);
        self.browser.wait_for(&bob).await;
        if let Some(name) = shot {
            self.shot(name).await;
        }
        self.browser.click(&bob).await;
        self.browser.click("#accept").await;
        self.browser
            .wait_for_url(&format!("{}/console/", self.endpoint))
            .await;
    }

    /// Asserts that every input, select, textarea and button on the page has an accessible
    /// name: a `<label>`, `aria-label` or `aria-labelledby`, or for a button its text.
    async fn assert_labelled(&self, situation: &str) {
        let unnamed = self.browser.execute(UNNAMED_CONTROLS, json!([])).await;
        assert_eq!(
            unnamed,
            json!([]),
            "controls without an accessible name {situation}"
        );
    }

    /// Presses `key` on the element with the focus, then waits until `script` returns true.
    async fn press_then(&self, key: &str, what: &str, script: &str, args: serde_json::Value) {
        self.browser.press(key).await;
        self.browser.wait_until(what, script, args).await;
    }

    /// The row of the connector named `name` (`accounts/…/connectors/…`) in group `group`.
    fn row(group: &str, name: &str) -> String {
        format!("#group-{group} tr[data-connector='{name}']")
    }
}

/// Lists the controls (outside `type=hidden` inputs) that have no accessible name.
const UNNAMED_CONTROLS: &str = r#"
const text = (element) => {
  const copy = element.cloneNode(true);
  for (const hidden of copy.querySelectorAll('[aria-hidden=true]')) hidden.remove();
  return copy.textContent.trim();
};
const named = (element) => {
  const ids = (element.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
  if (ids.some((id) => document.getElementById(id) && text(document.getElementById(id)))) return true;
  if ((element.getAttribute('aria-label') || '').trim()) return true;
  if ([...(element.labels || [])].some((label) => text(label))) return true;
  if (element.tagName === 'BUTTON') return text(element) !== '';
  if (element.tagName === 'INPUT' && ['submit', 'button', 'reset'].includes(element.type)) {
    return (element.value || '').trim() !== '';
  }
  return false;
};
return [...document.querySelectorAll('input, select, textarea, button')]
  .filter((element) => element.type !== 'hidden' && !named(element))
  .map((element) => element.outerHTML.slice(0, 200));
"#;

/// WebDriver key codes.
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";
const ARROW_DOWN: &str = "\u{E015}";

/// True when the Manage button `arguments[0]` has its menu open and the focus is on the menu
/// item `arguments[1]`.
const MENU_OPEN_AT: &str = "
const button = document.querySelector(arguments[0]);
const menu = button && document.getElementById(button.getAttribute('aria-controls'));
return button !== null && menu !== null && button.getAttribute('aria-expanded') === 'true'
  && !menu.hidden && menu.contains(document.activeElement)
  && document.activeElement.getAttribute('data-action') === arguments[1];
";

/// True when the Manage button `arguments[0]` has its menu closed and has the focus.
const MENU_CLOSED_FOCUSED: &str = "
const button = document.querySelector(arguments[0]);
const menu = button && document.getElementById(button.getAttribute('aria-controls'));
return button !== null && menu !== null && button.getAttribute('aria-expanded') === 'false'
  && menu.hidden && document.activeElement === button;
";

/// Whether Sign out and the Manage button `arguments[0]` lie inside the viewport and neither
/// the header nor the page overflows it sideways, with the measures (for the failure
/// message); the window must really be narrow.
const NARROW_FITS: &str = "
const width = document.documentElement.clientWidth;
const inside = (box) => box.width > 0 && box.left >= 0 && box.right <= width;
const signOut = document.getElementById('sign-out').getBoundingClientRect();
const manage = document.querySelector(arguments[0]).getBoundingClientRect();
const header = document.querySelector('.topbar-inner');
const page = document.documentElement.scrollWidth;
const fits = width <= 400 && inside(signOut) && signOut.top >= 0
  && signOut.bottom <= window.innerHeight && inside(manage)
  && header.scrollWidth <= header.clientWidth && page <= width;
return { fits, width, signOut: [signOut.left, signOut.right], manage: [manage.left, manage.right],
  header: header.scrollWidth, page };
";

async fn the_console_walks_every_flow(backend: Backend) {
    let emulator = Emulator::start().await.expect("emulator");
    let mut options = ServerOptions::new(backend);
    options.oauth = Some(oauth_options(&emulator, None));
    let server = TestServer::start_with(options).await;
    emulator
        .add_redirect_uri(fixtures::CLIENT_ID, &server.redirect_uri())
        .unwrap();
    let client = server.client().await;
    let azurite = Azurite::shared();
    let account = unique_account();
    let parent = format!("accounts/{account}");
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let mut console = Console {
        browser: Browser::start().await,
        endpoint: server.endpoint(),
        shots: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/console-screenshots")
            .join(backend_name),
        step: 0,
    };
    let page = format!("{}/console", server.endpoint());

    // Sign in: the key is checked with a call before the page takes it.
    console.browser.open(&page).await;
    console.browser.wait_for("#api-key").await;
    console.shot("sign-in").await;
    console.browser.type_into("#api-key", "not-a-key").await;
    console.browser.click("#sign-in-button").await;
    console
        .browser
        .wait_for_text("[data-testid=sign-in-problem]", "not accepted")
        .await;
    console.shot("sign-in-refused").await;
    console.browser.type_into("#api-key", ADMIN_KEY).await;
    console.browser.click("#sign-in-button").await;

    // An account id the service refuses: the account field is the one marked invalid, says why
    // and has the focus.
    console
        .browser
        .type_into("#account-input", "not an id!")
        .await;
    console.browser.click("#account-open").await;
    console
        .browser
        .wait_for_text("[data-testid=list-problem]", "Customer account: ")
        .await;
    let marked = console
        .browser
        .execute(
            "const input = document.getElementById('account-input'); \
             return [input.getAttribute('aria-invalid'), document.activeElement === input, \
               document.getElementById(input.getAttribute('aria-describedby')) \
                 === document.querySelector('[data-testid=list-problem]')];",
            json!([]),
        )
        .await;
    assert_eq!(
        marked,
        json!(["true", true, true]),
        "the invalid account id field: aria-invalid, focused, described by the problem"
    );
    console.shot("account-id-invalid").await;

    console.browser.type_into("#account-input", &account).await;
    console.browser.click("#account-open").await;
    console.browser.wait_for("#group-azure-blob-storage").await;
    assert_eq!(
        console
            .browser
            .attribute("#account-input", "aria-invalid")
            .await,
        None,
        "a valid account id is no longer marked"
    );
    console
        .browser
        .wait_for("#live-indicator[data-status='live']")
        .await;
    let stored = console
        .browser
        .execute(
            "return [sessionStorage.getItem('connector-console.api-key'), localStorage.length, document.cookie]",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(
        stored,
        serde_json::json!([ADMIN_KEY, 0, ""]),
        "the key is in sessionStorage only"
    );
    console.shot("empty-account").await;
    console.assert_labelled("on the empty account").await;
    // How each type authenticates, as its form asks: WebDAV has a password only.
    for (id, said) in [("webdav", "Password"), ("sftp", "Password or SSH key")] {
        let chip = format!("#group-other .type-card[data-type='{id}'] .chip");
        assert_eq!(console.browser.text_of(&chip).await, said, "{id}'s badge");
    }
    // This server has no app registration for Google Drive or Dropbox: their cards say so and
    // offer no button, while the configured types (Azure below, OneDrive later) do.
    for id in ["google-drive", "dropbox"] {
        let card = format!("#group-other .type-card[data-type='{id}']");
        assert_eq!(
            console
                .browser
                .attribute(&card, "data-available")
                .await
                .as_deref(),
            Some("false"),
            "{id} is shown unavailable"
        );
        let reason = console
            .browser
            .text_of(&format!("{card} [data-testid=type-unavailable]"))
            .await;
        assert!(
            reason.contains("Not set up on this server") && reason.contains("app registration"),
            "{id}'s reason: {reason}"
        );
        assert_eq!(
            console
                .browser
                .count(&format!("{card} [data-action='authorize']"))
                .await,
            0,
            "{id} offers no Authorize button"
        );
    }
    console
        .browser
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
            json!(["#group-other .type-card[data-type='google-drive']"]),
        )
        .await;
    console.shot("type-unavailable").await;
    console
        .browser
        .execute("window.scrollTo(0, 0)", json!([]))
        .await;
    for card in [
        "#group-azure-blob-storage .type-card[data-type='azure-blob-storage']",
        "#group-onedrive-consumer .type-card[data-type='onedrive-consumer']",
    ] {
        assert_eq!(
            console
                .browser
                .attribute(card, "data-available")
                .await
                .as_deref(),
            Some("true"),
            "{card} is available"
        );
        assert_eq!(
            console
                .browser
                .count(&format!("{card} [data-action='authorize']"))
                .await,
            1,
            "{card} offers Authorize New Connector"
        );
    }

    // An Azure connector, with the credentials form built from the type's credential fields.
    let storage = azurite.account(5);
    console
        .browser
        .click("#group-azure-blob-storage .type-card[data-type='azure-blob-storage'] [data-action='authorize']")
        .await;
    console.browser.wait_for("#credential-account_key").await;
    console
        .assert_labelled("with the Authorize New Connector form open")
        .await;
    console
        .browser
        .type_into("#new-display-name", "Finance archive")
        .await;
    console
        .browser
        .type_into("#credential-account_name", &storage.name)
        .await;
    console
        .browser
        .type_into("#credential-account_key", "d3Jvbmcga2V5")
        .await;
    console.browser.click("#authorize-dialog-submit").await;
    console
        .browser
        .wait_for("[data-testid=dialog-problem][data-reason='CREDENTIALS_REJECTED']")
        .await;
    console.shot("azure-key-rejected").await;
    console
        .browser
        .type_into("#credential-account_key", &storage.key1)
        .await;
    console.browser.click("#authorize-dialog-submit").await;
    console.browser.wait_gone("#authorize-dialog").await;
    console
        .browser
        .wait_for_text("[data-testid=linked]", "Linked “Finance archive”")
        .await;
    let azure = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .connectors
        .into_iter()
        .next()
        .expect("the Azure connector");
    assert_eq!(azure.display_name, "Finance archive");
    console
        .browser
        .wait_for_text(
            &Console::row("azure-blob-storage", &azure.name),
            "Finance archive",
        )
        .await;
    console
        .browser
        .wait_for(&format!(
            "{} .badge[data-state='authorized']",
            Console::row("azure-blob-storage", &azure.name)
        ))
        .await;
    console.shot("azure-linked").await;
    console.assert_labelled("with a connector listed").await;
    let azure_row = Console::row("azure-blob-storage", &azure.name);
    let azure_manage = format!("{azure_row} [data-action='manage']");

    // The same storage account again: "already linked" links to the connector that has it.
    console
        .browser
        .click("#group-azure-blob-storage [data-action='authorize']")
        .await;
    console
        .browser
        .type_into("#new-display-name", "Finance again")
        .await;
    console
        .browser
        .type_into("#credential-account_name", &storage.name)
        .await;
    console
        .browser
        .type_into("#credential-account_key", &storage.key1)
        .await;
    console.browser.click("#authorize-dialog-submit").await;
    let existing = "[data-testid=dialog-problem][data-reason='CONNECTOR_ALREADY_EXISTS'] \
                    a[data-action='show-existing']";
    console.browser.wait_for(existing).await;
    let href = console.browser.attribute(existing, "href").await;
    let id = azure.name.rsplit('/').next().unwrap();
    assert!(
        href.as_deref()
            .is_some_and(|href| href.ends_with(&format!("#{id}"))),
        "the link names the existing connector: {href:?}"
    );
    console.shot("azure-already-linked").await;
    console.browser.click(existing).await;
    console.browser.wait_gone("#authorize-dialog").await;
    console
        .browser
        .wait_for(&format!("#details[data-connector='{}']", azure.name))
        .await;

    // Reauthorizing Azure: the storage account name is the linked one, shown and read-only;
    // the focus starts on the key.
    console.browser.click(&azure_manage).await;
    console
        .browser
        .click(&format!("{azure_row} [data-action='reauthorize']"))
        .await;
    console.browser.wait_for("#credential-account_name").await;
    let name_field = console
        .browser
        .execute(
            "const input = document.getElementById('credential-account_name'); \
             return [input.value, input.readOnly, document.activeElement.id];",
            json!([]),
        )
        .await;
    assert_eq!(
        name_field,
        json!([storage.name, true, "credential-account_key"]),
        "the account name prefilled and read-only, the focus on the key to enter"
    );
    console.shot("azure-reauthorize").await;
    console
        .browser
        .type_into("#credential-account_key", &storage.key1)
        .await;
    console.browser.click("#reauthorize-dialog-submit").await;
    console.browser.wait_gone("#reauthorize-dialog").await;
    console
        .browser
        .wait_for_text("[data-testid=reauthorized]", "Finance archive")
        .await;
    // Notices do not pile up: the new success replaced the earlier one, and goes away by
    // itself (a bounded wait on the page, no sleep).
    assert_eq!(console.browser.count("#notices .notice").await, 1);
    console
        .browser
        .wait_gone("[data-testid=reauthorized]")
        .await;

    // The Manage ▼ menu by keyboard only: Enter opens it on its first item, ↓ moves, Escape
    // closes it and gives the focus back to its button; Delete chosen with Enter asks first, in
    // a dialog that takes the focus, and Escape there deletes nothing.
    console.browser.wait_for(&azure_manage).await;
    console
        .browser
        .wait_until(
            "the Manage button focused",
            "const button = document.querySelector(arguments[0]); \
             if (button === null) return false; \
             button.focus(); return document.activeElement === button;",
            json!([azure_manage]),
        )
        .await;
    console
        .press_then(
            ENTER,
            "the menu open on Reauthorize after Enter",
            MENU_OPEN_AT,
            json!([azure_manage, "reauthorize"]),
        )
        .await;
    console
        .press_then(
            ARROW_DOWN,
            "the focus on Delete after ↓",
            MENU_OPEN_AT,
            json!([azure_manage, "delete"]),
        )
        .await;
    console
        .press_then(
            ARROW_DOWN,
            "the focus back on Reauthorize after ↓ on the last item",
            MENU_OPEN_AT,
            json!([azure_manage, "reauthorize"]),
        )
        .await;
    console
        .press_then(
            ESCAPE,
            "the menu closed with the focus on its button after Escape",
            MENU_CLOSED_FOCUSED,
            json!([azure_manage]),
        )
        .await;
    console
        .press_then(
            ENTER,
            "the menu open again after Enter",
            MENU_OPEN_AT,
            json!([azure_manage, "reauthorize"]),
        )
        .await;
    console
        .press_then(
            ARROW_DOWN,
            "the focus on Delete",
            MENU_OPEN_AT,
            json!([azure_manage, "delete"]),
        )
        .await;
    console
        .press_then(
            ENTER,
            "the delete confirmation open with the focus in it",
            "const dialog = document.getElementById('delete-dialog'); \
             return dialog !== null && dialog.open && dialog.contains(document.activeElement);",
            json!([]),
        )
        .await;
    let confirmation = console
        .browser
        .wait_for_text("#delete-dialog", "Finance archive")
        .await;
    // Azure cannot revoke an account key: the dialog does not claim it.
    assert!(
        !confirmation.contains("Our access is revoked"),
        "{confirmation:?}"
    );
    for said in [
        "Our access cannot be revoked",
        "stays valid",
        "Rotate the key",
    ] {
        assert!(confirmation.contains(said), "{said:?} in {confirmation:?}");
    }
    console
        .assert_labelled("with the delete confirmation open")
        .await;
    console
        .press_then(
            ESCAPE,
            "the confirmation closed with the focus back on the Manage button",
            "return document.getElementById('delete-dialog') === null \
             && document.activeElement === document.querySelector(arguments[0]);",
            json!([azure_manage]),
        )
        .await;
    console.browser.wait_for(&azure_row).await;
    client
        .get_connector(pb::GetConnectorRequest {
            name: azure.name.clone(),
        })
        .await
        .expect("still there after Escape");

    // OneDrive through the emulator's sign-in page; the console completes the authorization.
    console
        .browser
        .click("#group-onedrive-consumer [data-action='authorize']")
        .await;
    console
        .browser
        .type_into("#new-display-name", "Bob's OneDrive")
        .await;
    console.shot("onedrive-authorize").await;
    console.browser.click("#authorize-dialog-submit").await;
    console.consent_as_bob(Some("emulator-sign-in")).await;
    console
        .browser
        .wait_for_text("[data-testid=oauth-success]", "Linked “Bob's OneDrive”")
        .await;
    let address = console.browser.current_url().await;
    assert!(
        !address.contains("code=") && !address.contains("state="),
        "the parameters are off the address bar: {address}"
    );
    let onedrive = client
        .list_connectors(pb::ListConnectorsRequest {
            parent: parent.clone(),
            filter: "connector_type = \"connectorTypes/onedrive-consumer\"".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .connectors
        .into_iter()
        .next()
        .expect("the OneDrive connector");
    assert_eq!(onedrive.display_name, "Bob's OneDrive");
    assert_eq!(
        onedrive.external_account.as_ref().unwrap().label,
        fixtures::BOB_UPN
    );
    // Each in its own group, and only there.
    let onedrive_row = Console::row("onedrive-consumer", &onedrive.name);
    console.browser.wait_for(&onedrive_row).await;
    assert_eq!(
        console
            .browser
            .count(&format!("#groups tr[data-connector='{}']", onedrive.name))
            .await,
        1
    );
    assert_eq!(
        console
            .browser
            .count(&format!(
                "#group-azure-blob-storage [data-connector='{}']",
                onedrive.name
            ))
            .await,
        0
    );
    console.browser.wait_for("#details-title").await;
    console.shot("onedrive-linked").await;
    console.assert_labelled("with the details panel open").await;

    // Renaming is refused by the service, and the console says why.
    console
        .browser
        .wait_for_text("#rename-note", "to rename, delete and add again")
        .await;
    console.browser.click("#rename-button").await;
    console
        .browser
        .wait_for_text(
            "[data-testid=rename-problem][data-reason='DISPLAY_NAME_IMMUTABLE']",
            "delete the connector and add it again",
        )
        .await;
    console.shot("rename-refused").await;

    // Reauthorize from the Manage ▼ menu, signing in again as Bob.
    let manage = format!("{onedrive_row} [data-action='manage']");
    console.browser.click(&manage).await;
    assert_eq!(
        console
            .browser
            .attribute(&manage, "aria-expanded")
            .await
            .as_deref(),
        Some("true")
    );
    console.shot("manage-menu").await;
    console
        .browser
        .click(&format!("{onedrive_row} [data-action='reauthorize']"))
        .await;
    console.browser.click("#reauthorize-dialog-submit").await;
    console.consent_as_bob(None).await;
    console
        .browser
        .wait_for_text("[data-testid=oauth-success]", "Reauthorized")
        .await;
    console
        .browser
        .wait_for("#event-list li[data-kind='REAUTHORIZED']")
        .await;
    console.shot("reauthorized").await;

    // Bob revokes the app at Microsoft; two hours later (for the service and the provider
    // alike: id tokens are checked for expiry) the access token has expired, and the next
    // token request finds the grant gone.
    emulator
        .revoke_user_grant(fixtures::BOB_UPN, fixtures::CLIENT_ID)
        .expect("revoke");
    server.clock.advance(Duration::hours(2));
    emulator.advance_clock(std::time::Duration::from_secs(2 * 3600));
    console.browser.click("#test-access").await;
    console
        .browser
        .wait_for_text(
            "[data-testid=access-problem][data-reason='CONNECTOR_DEAUTHORIZED']",
            "lost its authorization",
        )
        .await;
    console
        .browser
        .wait_for("[data-testid=access-problem] [data-action='reauthorize']")
        .await;
    console.shot("access-lost").await;

    // After a reload, the connector shows the error, its reason and the reauthorize prompt.
    console.browser.refresh().await;
    console
        .browser
        .wait_for_text("#deauthorized-alert", "revoked")
        .await;
    console
        .browser
        .wait_for(&format!("{onedrive_row} .badge[data-state='deauthorized']"))
        .await;
    console
        .browser
        .wait_for("#event-list li[data-kind='DEAUTHORIZED']")
        .await;
    console.shot("deauthorized-after-reload").await;
    console.browser.click("#deauthorized-reauthorize").await;
    console.browser.click("#reauthorize-dialog-submit").await;
    console.consent_as_bob(None).await;
    console
        .browser
        .wait_for_text("[data-testid=oauth-success]", "Reauthorized")
        .await;
    console
        .browser
        .wait_for(&format!("{onedrive_row} .badge[data-state='authorized']"))
        .await;
    console.browser.wait_gone("#deauthorized-alert").await;
    let shown = client
        .get_connector(pb::GetConnectorRequest {
            name: onedrive.name.clone(),
        })
        .await
        .expect("get");
    assert_eq!(shown.state(), pb::connector::State::Authorized);
    assert_eq!(shown.display_name, "Bob's OneDrive", "the same connector");
    console.shot("reauthorized-from-error").await;

    // Events appear live: a connector linked elsewhere (an orchestrator over gRPC) shows up in
    // the timeline and the list without a reload. The list is redrawn while someone is in a
    // Manage ▼ menu: the menu stays open, with the focus on the item it was on.
    console.browser.click(&manage).await;
    console
        .press_then(
            ARROW_DOWN,
            "the OneDrive menu open on Delete",
            MENU_OPEN_AT,
            json!([manage, "delete"]),
        )
        .await;
    let elsewhere = client
        .create_connector(azure_create(
            &parent,
            azurite.account(6),
            "Linked elsewhere",
        ))
        .await
        .expect("created over gRPC");
    let elsewhere_row = Console::row("azure-blob-storage", &elsewhere.name);
    console
        .browser
        .wait_for_text(
            &format!(
                "#event-list li[data-kind='AUTHORIZED'][data-connector='{}']",
                elsewhere.name
            ),
            "Linked elsewhere",
        )
        .await;
    console.browser.wait_for(&elsewhere_row).await;
    // The row is drawn in the same task that reopens the menu: no wait needed.
    assert_eq!(
        console
            .browser
            .execute(MENU_OPEN_AT, json!([manage, "delete"]))
            .await,
        json!(true),
        "the Manage menu still open on Delete after the live update"
    );
    console.shot("live-event").await;

    // Delete after the confirmation, which says what deleting means. While it is open, the
    // list changes underneath (the other connector is deleted elsewhere); closing it gives the
    // focus back to the Manage button of the redrawn list.
    console
        .press_then(
            ENTER,
            "the delete confirmation open",
            "const dialog = document.getElementById('delete-dialog'); \
             return dialog !== null && dialog.open && dialog.contains(document.activeElement);",
            json!([]),
        )
        .await;
    let confirmation = console.browser.text_of("#delete-dialog").await;
    assert!(
        !confirmation.contains("Our access is revoked"),
        "Microsoft cannot revoke a sign-in: {confirmation:?}"
    );
    for said in [
        "permanent",
        "Our access cannot be revoked",
        "account.live.com",
    ] {
        assert!(confirmation.contains(said), "{said:?} in {confirmation:?}");
    }
    client
        .delete_connector(pb::DeleteConnectorRequest {
            name: elsewhere.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("deleted over gRPC");
    console.browser.wait_gone(&elsewhere_row).await;
    console
        .press_then(
            ESCAPE,
            "the confirmation closed with the focus on the redrawn Manage button",
            "return document.getElementById('delete-dialog') === null \
             && document.activeElement === document.querySelector(arguments[0]);",
            json!([manage]),
        )
        .await;
    // Activity says what became of the deleted connector's key in the customer's words.
    let revocation = console
        .browser
        .wait_for_text(
            &format!(
                "#event-list li[data-kind='REVOCATION_FINISHED'][data-connector='{}']",
                elsewhere.name
            ),
            "Credentials erased for",
        )
        .await;
    assert!(
        !revocation.contains("provider") && revocation.contains("change or remove them there"),
        "{revocation:?}"
    );
    console
        .press_then(
            ENTER,
            "the menu open again",
            MENU_OPEN_AT,
            json!([manage, "reauthorize"]),
        )
        .await;
    console
        .press_then(
            ARROW_DOWN,
            "the focus on Delete",
            MENU_OPEN_AT,
            json!([manage, "delete"]),
        )
        .await;
    console
        .press_then(
            ENTER,
            "the delete confirmation open again",
            "const dialog = document.getElementById('delete-dialog'); \
             return dialog !== null && dialog.open;",
            json!([]),
        )
        .await;
    console.shot("delete-confirmation").await;
    console.browser.click("#delete-dialog-submit").await;
    // Nothing was revoked, so the notice is a warning saying what is left to do, not a
    // success; it stays until dismissed.
    let deleted = console
        .browser
        .wait_for_text("[data-testid=deleted]", "Deleted “Bob's OneDrive”")
        .await;
    assert!(
        deleted.contains("Nothing was revoked") && deleted.contains("account.live.com"),
        "{deleted:?}"
    );
    assert_eq!(
        console
            .browser
            .count("[data-testid=deleted].alert-warning")
            .await,
        1
    );
    console.browser.wait_gone(&onedrive_row).await;
    console
        .browser
        .wait_for(&format!(
            "#event-list li[data-kind='DELETED'][data-connector='{}']",
            onedrive.name
        ))
        .await;
    let gone = client
        .get_connector(pb::GetConnectorRequest {
            name: onedrive.name.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    console.shot("deleted").await;
    console
        .browser
        .click("#notices .notice [aria-label='Dismiss']")
        .await;
    console.browser.wait_gone("[data-testid=deleted]").await;

    // On a phone-sized screen (390 px), the header and the list fit: Sign out and Manage are
    // inside the viewport, nothing scrolls sideways.
    console.browser.set_window_size(390, 844).await;
    console.shot("narrow").await;
    let fits = console
        .browser
        .execute(NARROW_FITS, json!([azure_manage]))
        .await;
    assert_eq!(fits["fits"], json!(true), "at 390 px: {fits}");

    // Signing out forgets the key.
    console.browser.click("#sign-out").await;
    console.browser.wait_for("#api-key").await;
    let stored = console
        .browser
        .execute("return sessionStorage.length", serde_json::json!([]))
        .await;
    assert_eq!(stored, serde_json::json!(0));
}
