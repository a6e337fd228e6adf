//! The browser leg for real: headless Chromium, driven through ChromeDriver's WebDriver API,
//! opens the `authorization_url`, signs in and consents on the emulator's page, follows the
//! redirects through the service's callback (confirming there where the deployment opted in)
//! to the return URL, and the new connector is there over gRPC.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use connector_client::pb;
use connector_tests::{
    Backend, ConfigHook, ServerOptions, TestServer, callback_request, free_port, oauth_options,
    on_both_backends, query_param, tool_env, unique_parent, wait_for_port,
};
use identity_emulator::{Emulator, fixtures};
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt as _, net::TcpListener};

on_both_backends!(a_user_links_onedrive_in_a_real_browser);

/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver process and one headless Chromium session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let http = reqwest::Client::new();
        // The port chosen can be taken by another listener of this process (a test server
        // binding port 0) before ChromeDriver binds it; ChromeDriver then keeps running on IPv6
        // only, and the other listener answers on 127.0.0.1 until it goes away. So the port
        // counts as ChromeDriver's only once ChromeDriver's own status answer comes from it.
        let mut started = None;
        for _ in 0..5 {
            let port = free_port();
            let mut driver = Command::new(tool_env("CHROMEDRIVER_BIN"))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            tokio::task::spawn_blocking(move || wait_for_port(port, Duration::from_secs(30)))
                .await
                .unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let status: Option<Value> = match http.get(format!("{base}/status")).send().await {
                Ok(answer) => answer.json().await.ok(),
                Err(_) => None,
            };
            if status.is_some_and(|status| status["value"]["ready"].is_boolean()) {
                started = Some((base, driver));
                break;
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
        let (base, driver) = started.expect("ChromeDriver answering on its own port");
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tool_env("CHROMIUM_BIN"),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let response: Value = self
            .http
            .request(method, url)
            .json(&body)
            .send()
            .await
            .expect("webdriver answers")
            .json()
            .await
            .expect("webdriver JSON");
        assert!(
            response["value"].get("error").is_none(),
            "webdriver error on {path}: {response}"
        );
        response["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn click(&self, css: &str) {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = element[ELEMENT].as_str().expect("an element").to_owned();
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    async fn current_url(&self) -> String {
        let url = format!("{}/session/{}/url", self.base, self.session);
        let response: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["value"].as_str().unwrap_or_default().to_owned()
    }

    async fn text_of(&self, css: &str) -> String {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = element[ELEMENT].as_str().expect("an element").to_owned();
        let url = format!("{}/session/{}/element/{id}/text", self.base, self.session);
        let response: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["value"].as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The orchestrator's page the browser ends on: answers every request with a small page.
async fn return_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/linked", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
                let body = "<html><body><h1 id=\"done\">Linked</h1></body></html>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

/// Opens the authorization URL, signs in as Bob and consents, optionally confirms at the
/// service's callback, and returns the return URL the browser lands on.
async fn sign_in(
    browser: &Browser,
    authorization_url: &str,
    return_url: &str,
    confirm: bool,
) -> String {
    browser.open(authorization_url).await;
    browser
        .click(&format!("#account option[value='{}']", fixtures::BOB_UPN))
        .await;
    browser.click("#accept").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    if confirm {
        // Emulator → the callback's confirmation page (a page load, not a clock).
        while !browser.current_url().await.contains("/oauth/callback") {
            assert!(
                Instant::now() < deadline,
                "the browser never reached the callback"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.click("#confirm").await;
    }
    // … → return URL.
    loop {
        let url = browser.current_url().await;
        if url.starts_with(return_url) {
            assert_eq!(browser.text_of("#done").await, "Linked");
            return url;
        }
        assert!(Instant::now() < deadline, "the browser is stuck at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn server(
    backend: Backend,
    emulator: &Emulator,
    return_url: &str,
    confirming: bool,
) -> TestServer {
    let mut options = ServerOptions::new(backend);
    let mut oauth = oauth_options(emulator, None);
    oauth.return_urls = vec![return_url.to_owned()];
    options.oauth = Some(oauth);
    if confirming {
        options.configure = Some(ConfigHook::new(|config| {
            config.callback_completes_authorizations = true;
        }));
    }
    let server = TestServer::start_with(options).await;
    emulator
        .add_redirect_uri(fixtures::CLIENT_ID, &server.redirect_uri())
        .unwrap();
    server
}

/// Both ways a person links an account: by default the callback forwards the browser to the
/// orchestrator, which completes the authorization; where the deployment opted in, the user
/// confirms on the service's page and the link is made there.
async fn a_user_links_onedrive_in_a_real_browser(backend: Backend) {
    let emulator = Emulator::start().await.expect("emulator");
    let return_url = return_page().await;
    let browser = Browser::start().await;
    for confirming in [false, true] {
        let server = server(backend, &emulator, &return_url, confirming).await;
        let client = server.client().await;
        let started = client
            .start_authorization(pb::StartAuthorizationRequest {
                parent: unique_parent(),
                connector_type: "connectorTypes/onedrive-consumer".into(),
                display_name: "Linked in Chromium".into(),
                return_url: return_url.clone(),
                ..Default::default()
            })
            .await
            .expect("started");
        let landed = sign_in(
            &browser,
            &started.authorization_url,
            &return_url,
            confirming,
        )
        .await;
        let name = if confirming {
            query_param(&landed, "connector").expect("connector in the return URL")
        } else {
            // The orchestrator, having checked its own session, completes the authorization.
            assert!(query_param(&landed, "connector").is_none(), "{landed}");
            client
                .complete_authorization(callback_request(&landed))
                .await
                .expect("completed by the orchestrator")
                .name
        };
        let connector = client
            .get_connector(pb::GetConnectorRequest { name })
            .await
            .expect("the connector exists");
        assert_eq!(connector.display_name, "Linked in Chromium");
        assert_eq!(connector.state(), pb::connector::State::Authorized);
        assert_eq!(
            connector.external_account.unwrap().label,
            fixtures::BOB_UPN,
            "the account chosen in the browser"
        );
    }
}
