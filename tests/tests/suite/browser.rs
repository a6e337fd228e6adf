//! The browser leg for real: headless Chromium, driven through ChromeDriver's WebDriver API,
//! opens the `authorization_url`, signs in and consents on the emulator's page, follows the
//! redirects through the service's callback (confirming there where the deployment opted in)
//! to the return URL, and the new connector is there over gRPC.

use std::time::{Duration, Instant};

use connector_client::pb;
use connector_tests::{
    Backend, ConfigHook, ServerOptions, TestServer, browser::Browser, callback_request,
    oauth_options, on_both_backends, query_param, unique_parent,
};
use identity_emulator::{Emulator, fixtures};
use tokio::{io::AsyncWriteExt as _, net::TcpListener};

on_both_backends!(a_user_links_onedrive_in_a_real_browser);

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
