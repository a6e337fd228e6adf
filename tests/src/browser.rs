//! Headless Chromium for the browser tests, driven through ChromeDriver's W3C WebDriver API over
//! HTTP (Debian's `chromium` and `chromium-driver`, from `CHROMIUM_BIN` and `CHROMEDRIVER_BIN`).
//! Every wait is bounded and polls the page: a test never sleeps to let something happen.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Value, json};

use crate::{
    ports::{free_port, wait_for_port},
    tools::tool_env,
};

/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page lasts before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(30);

/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(100);

/// A ChromeDriver process and one headless Chromium session; both end when it is dropped (the
/// session first, which closes Chromium: killing ChromeDriver alone leaves Chromium running).
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("base", &self.base)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a session with a fresh profile.
    pub async fn start() -> Browser {
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
                    "--disable-component-update", "--disable-sync", "--window-size=1440,1000",
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
            profile,
        }
    }

    /// Sends a WebDriver command of this session; a WebDriver error is `Err` with its value.
    pub async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request
            .send()
            .await
            .expect("webdriver answers")
            .json()
            .await
            .expect("webdriver JSON");
        match response["value"].get("error") {
            Some(_) => Err(response["value"].clone()),
            None => Ok(response["value"].clone()),
        }
    }

    /// Sends a WebDriver command that must succeed.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let body = (method != reqwest::Method::GET).then_some(body);
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("webdriver error on {path}: {error}"))
    }

    /// Navigates to `url`.
    pub async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.command(reqwest::Method::POST, "/refresh", json!({}))
            .await;
    }

    /// The address the browser is at.
    pub async fn current_url(&self) -> String {
        let url = self.command(reqwest::Method::GET, "/url", json!({})).await;
        url.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css` now, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .try_command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        found[ELEMENT].as_str().map(str::to_owned)
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.try_command(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .ok()
        .and_then(|found| found.as_array().map(Vec::len))
        .unwrap_or(0)
    }

    /// Waits until an element matching `css` is displayed, and returns it.
    pub async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            if let Some(element) = self.find(css).await
                && self.displayed(&element).await
            {
                return element;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no visible {css} within {PAGE_WAIT:?} at {}; the page: {}",
                    self.current_url().await,
                    self.page_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let deadline = Instant::now() + PAGE_WAIT;
        while self.find(css).await.is_some() {
            assert!(Instant::now() < deadline, "{css} still there");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the address starts with `prefix`, and returns it.
    pub async fn wait_for_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let url = self.current_url().await;
            if url.starts_with(prefix) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser is at {url}, not {prefix}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The page's visible text (for failure messages), cut to a readable length.
    pub async fn page_text(&self) -> String {
        let text = self
            .try_command(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": "return document.body ? document.body.innerText : document.documentElement.outerHTML", "args": []})),
            )
            .await
            .map(|text| text.as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|error| error.to_string());
        text.chars().take(2000).collect()
    }

    async fn displayed(&self, element: &str) -> bool {
        self.try_command(
            reqwest::Method::GET,
            &format!("/element/{element}/displayed"),
            None,
        )
        .await
        .ok()
        .and_then(|shown| shown.as_bool())
        .unwrap_or(false)
    }

    /// Waits for `css` and clicks it. A page that redraws the element between finding and
    /// clicking it (a stale reference) is looked at again.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let element = self.wait_for(css).await;
            let clicked = self
                .try_command(
                    reqwest::Method::POST,
                    &format!("/element/{element}/click"),
                    Some(json!({})),
                )
                .await;
            match clicked {
                Ok(_) => return,
                Err(error)
                    if error["error"] == "stale element reference" && Instant::now() < deadline =>
                {
                    continue;
                }
                Err(error) => panic!("clicking {css}: {error}"),
            }
        }
    }

    /// Waits for the input `css`, clears it and types `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            json!({}),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Presses keys (WebDriver key codes, for example `"\u{E007}"` for Enter) on the element
    /// that has the focus.
    pub async fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                [
                    json!({"type": "keyDown", "value": key.to_string()}),
                    json!({"type": "keyUp", "value": key.to_string()}),
                ]
            })
            .collect();
        self.command(
            reqwest::Method::POST,
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
        self.try_command(reqwest::Method::DELETE, "/actions", None)
            .await
            .ok();
    }

    /// The visible text of the first element matching `css` (waiting for it).
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        let text = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                json!({}),
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the text of `css` contains `needle`, and returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            if let Some(element) = self.find(css).await {
                let text = self
                    .try_command(
                        reqwest::Method::GET,
                        &format!("/element/{element}/text"),
                        None,
                    )
                    .await
                    .ok()
                    .and_then(|text| text.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if text.contains(needle) {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "{css} says {text:?}, never {needle:?}"
                );
            } else if Instant::now() >= deadline {
                panic!(
                    "no {css} saying {needle:?}; the page: {}",
                    self.page_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// An attribute of the first element matching `css` (waiting for it).
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.wait_for(css).await;
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{element}/attribute/{name}"),
                json!({}),
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    /// Runs `script` in the page (a function body; `arguments` holds `args`) and returns what
    /// it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Waits until `script` (as for [`Browser::execute`]) returns `true`; `what` says what was
    /// awaited when it never does.
    pub async fn wait_until(&self, what: &str, script: &str, args: Value) {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let answer = self.execute(script, args.clone()).await;
            if answer == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "never {what} within {PAGE_WAIT:?} (the script said {answer}); the page: {}",
                    self.page_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resizes the browser window, for example to a phone's 390 px width.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// The profile directory of this session's Chromium (every Chromium process of the session
    /// names it on its command line).
    pub fn profile(&self) -> &Path {
        self.profile.path()
    }

    /// Ends the WebDriver session, which makes ChromeDriver close Chromium, and waits for the
    /// answer (ChromeDriver answers once Chromium is gone). Blocking, for `Drop`: plain HTTP/1.1
    /// on a socket, as no async runtime can be relied on while dropping.
    fn end_session(&self) {
        let Some(address) = self.base.strip_prefix("http://") else {
            return;
        };
        let Ok(mut stream) = TcpStream::connect(address) else {
            return;
        };
        let _ = stream.set_write_timeout(Some(PAGE_WAIT));
        let _ = stream.set_read_timeout(Some(PAGE_WAIT));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self
            .command(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        let png = BASE64
            .decode(shot.as_str().expect("base64 screenshot"))
            .expect("screenshot decodes");
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.end_session();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
