//! The identity emulator (the `identity-emulator` crate) as the OAuth 2.0 provider of a test
//! server, and the browser's and the orchestrator's parts of an authorization.

use connector_client::pb;
use tonic::Status;

use crate::{
    backend::Backend,
    server::{ConfigHook, OAuthOptions, ServerOptions, TestServer},
};

/// The return URL every OAuth test server allows.
pub const RETURN_URL: &str = "https://orchestrator.example/connectors/done";

/// A test server wired to a fresh identity emulator, with apps for the three OAuth types.
#[derive(Debug)]
pub struct OAuthWorld {
    /// The identity platform and Graph emulator.
    pub emulator: identity_emulator::Emulator,
    /// The server.
    pub server: TestServer,
}

impl OAuthWorld {
    /// Starts an emulator and a server using it.
    pub async fn start(backend: Backend) -> OAuthWorld {
        Self::start_with_revocation(backend, false).await
    }

    /// Like [`Self::start`]; with `revocation`, the apps use the emulator's RFC 7009 endpoint.
    pub async fn start_with_revocation(backend: Backend, revocation: bool) -> OAuthWorld {
        Self::start_customized(backend, revocation, |_| {}).await
    }

    /// Like [`Self::start_with_revocation`], with server options changed by `customize`.
    pub async fn start_customized(
        backend: Backend,
        revocation: bool,
        customize: impl FnOnce(&mut ServerOptions),
    ) -> OAuthWorld {
        let emulator = identity_emulator::Emulator::start()
            .await
            .expect("emulator");
        let mut options = ServerOptions::new(backend);
        let revocation_url = revocation.then(|| emulator.revoke_url());
        options.oauth = Some(oauth_options(&emulator, revocation_url));
        customize(&mut options);
        let server = TestServer::start_with(options).await;
        emulator
            .add_redirect_uri(
                identity_emulator::fixtures::CLIENT_ID,
                &server.redirect_uri(),
            )
            .expect("register the redirect URI");
        OAuthWorld { emulator, server }
    }

    /// Like [`Self::start`], on a server that opted in to completing authorizations at its
    /// callback after the user confirms (`callback_completes_authorizations`).
    pub async fn start_confirming(backend: Backend) -> OAuthWorld {
        Self::start_customized(backend, false, |options| {
            options.configure = Some(ConfigHook::new(|config| {
                config.callback_completes_authorizations = true;
            }));
        })
        .await
    }

    /// Starts a second server process on the same database and emulator.
    pub async fn second_server(&self) -> TestServer {
        let server = TestServer::start_with(self.server.sharing_options()).await;
        self.emulator
            .add_redirect_uri(
                identity_emulator::fixtures::CLIENT_ID,
                &server.redirect_uri(),
            )
            .expect("register the redirect URI");
        server
    }

    /// Starts an authorization and returns its URL.
    pub async fn authorization_url(&self, parent: &str, connector_type: &str) -> String {
        self.server
            .client()
            .await
            .start_authorization(pb::StartAuthorizationRequest {
                parent: parent.to_owned(),
                connector_type: connector_type.to_owned(),
                ..Default::default()
            })
            .await
            .expect("started")
            .authorization_url
    }

    /// Links a connector: starts an authorization, signs in at the emulator as `account`
    /// (a user principal name), and completes it through `CompleteAuthorization`.
    pub async fn link(
        &self,
        parent: &str,
        connector_type: &str,
        account: &str,
    ) -> Result<pb::Connector, Status> {
        let client = self.server.client().await;
        let started = client
            .start_authorization(pb::StartAuthorizationRequest {
                parent: parent.to_owned(),
                connector_type: connector_type.to_owned(),
                ..Default::default()
            })
            .await?;
        let redirect = self
            .emulator
            .complete_authorization(&started.authorization_url, account)
            .expect("the emulator signs in");
        client
            .complete_authorization(callback_request(&redirect))
            .await
    }
}

/// The emulator settings for a server: every OAuth type uses the emulator's fixture client.
pub fn oauth_options(
    emulator: &identity_emulator::Emulator,
    revocation_url: Option<String>,
) -> OAuthOptions {
    use connector_server::config::OAuthAppConfig;
    let app = || OAuthAppConfig {
        client_id: identity_emulator::fixtures::CLIENT_ID.to_owned(),
        client_secret: identity_emulator::fixtures::CLIENT_SECRET.to_owned().into(),
        tenant: None,
        scopes: None,
        revocation_url: revocation_url.clone(),
        authorize_url: None,
        token_url: None,
        identity_url: None,
        issuer: None,
    };
    OAuthOptions {
        login_base: emulator.base_url().to_owned(),
        graph_base: emulator.base_url().to_owned(),
        apps: vec![
            ("onedrive-consumer", app()),
            ("onedrive-for-business-user", app()),
            ("office-365", app()),
        ],
        return_urls: vec![RETURN_URL.to_owned()],
    }
}

/// A `CompleteAuthorizationRequest` from the provider's redirect (the `Location` it sent the
/// browser to).
pub fn callback_request(redirect: &str) -> pb::CompleteAuthorizationRequest {
    let url = reqwest::Url::parse(redirect).expect("a redirect URL");
    let get = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    pb::CompleteAuthorizationRequest {
        state: get("state"),
        code: get("code"),
        error: get("error"),
        error_description: get("error_description"),
        tenant: get("tenant"),
        admin_consent: get("admin_consent"),
        iss: get("iss"),
    }
}

/// The browser's part at a callback that asks for confirmation: opens `redirect` (the
/// provider's redirect to the callback), checks it is the confirmation page naming `account`,
/// and submits it with `decision` (`confirm` or `cancel`). Returns the answer to the submission.
pub async fn confirm_at_callback(
    redirect: &str,
    account: &str,
    decision: &str,
) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let shown = http.get(redirect).send().await.expect("callback answers");
    assert_eq!(shown.status().as_u16(), 200);
    let page = shown.text().await.unwrap();
    assert!(page.contains("Confirm the link"), "{page}");
    assert!(
        page.contains(&format!("<strong id=\"account\">{account}</strong>")),
        "the page names the customer account: {page}"
    );
    let callback = redirect.split('?').next().unwrap();
    http.post(callback)
        .form(&[
            ("state", query_param(redirect, "state").unwrap_or_default()),
            ("code", query_param(redirect, "code").unwrap_or_default()),
            ("decision", decision.to_owned()),
        ])
        .send()
        .await
        .expect("callback answers")
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
