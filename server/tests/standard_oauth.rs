//! The configuration-defined OAuth 2.0 provider (`providers::standard_oauth`) against a real
//! OAuth 2.0 authorization server on loopback (the identity emulator, used here only through
//! its standard endpoints): PKCE, both client authentications, identity from the id token or
//! from an API call, refresh, RFC 7009 revocation, and `invalid_grant` read as a lost grant.

use chrono::Utc;
use connector_server::providers::{
    Error,
    oauth::{AuthorizationRequest, GrantLoss, OAuthProvider},
    standard_oauth::{Client, ClientAuth, IdentitySource, Profile, Revocation, StandardOAuth},
};
use identity_emulator::{CONSUMER_TENANT_ID, Emulator, Failure, fixtures};

const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";

fn profile(emulator: &Emulator, client_auth: ClientAuth, identity: IdentitySource) -> Profile {
    Profile {
        authorize_url: emulator.authorize_url("consumers"),
        token_url: emulator.token_url("consumers"),
        scopes: ["openid", "email", "offline_access", "User.Read"]
            .map(str::to_owned)
            .to_vec(),
        authorize_params: vec![("prompt".into(), "consent".into())],
        pkce: true,
        client_auth,
        identity,
        issuer: Some(format!("{}/{CONSUMER_TENANT_ID}/v2.0", emulator.base_url())),
        keeps_refresh_token: true,
        revocation: Some(Revocation::Rfc7009 {
            url: emulator.revoke_url(),
        }),
        expired_grant_descriptions: vec!["AADSTS70008".into()],
        resource_url: emulator.graph_url(),
    }
}

fn provider(profile: Profile) -> StandardOAuth {
    StandardOAuth::new(
        reqwest::Client::new(),
        Client {
            id: fixtures::CLIENT_ID.into(),
            secret: fixtures::CLIENT_SECRET.to_owned().into(),
        },
        profile,
    )
}

fn id_token_identity() -> IdentitySource {
    IdentitySource::IdToken {
        id_claim: "sub".into(),
        label_claims: vec!["email".into(), "preferred_username".into()],
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn a_configured_provider_links_refreshes_and_revokes() {
    let emulator = Emulator::builder()
        .redirect_uri(REDIRECT_URI)
        .start()
        .await
        .expect("the emulator");
    for (client_auth, identity) in [
        (ClientAuth::RequestBody, id_token_identity()),
        (
            ClientAuth::Basic,
            IdentitySource::Call {
                method: reqwest::Method::GET,
                url: format!("{}/me", emulator.graph_url()),
                body: None,
                id_pointer: "/id".into(),
                label_pointers: vec!["/userPrincipalName".into()],
            },
        ),
    ] {
        let by_call = matches!(identity, IdentitySource::Call { .. });
        let provider = provider(profile(&emulator, client_auth, identity));
        let request = AuthorizationRequest {
            redirect_uri: REDIRECT_URI,
            state: "state-1",
            nonce: "nonce-1",
        };
        let started = provider.authorization_url(request).expect("a URL");
        assert_eq!(
            query_param(&started.url, "code_challenge_method").as_deref(),
            Some("S256")
        );
        assert_eq!(
            query_param(&started.url, "prompt").as_deref(),
            Some("consent")
        );
        let callback = emulator
            .complete_authorization(&started.url, fixtures::ALICE_UPN)
            .expect("signed in");
        assert_eq!(query_param(&callback, "state").as_deref(), Some("state-1"));
        let code = query_param(&callback, "code").expect("a code");
        let now = Utc::now();

        // The code is bound to the PKCE verifier: another verifier is refused.
        let wrong = provider
            .exchange(request, &code, &"not-the-verifier".to_owned().into(), now)
            .await;
        assert!(
            matches!(wrong, Err(Error::InvalidGrant { .. })),
            "{wrong:?}"
        );

        let callback = emulator
            .complete_authorization(&started.url, fixtures::ALICE_UPN)
            .expect("signed in again");
        let code = query_param(&callback, "code").expect("a code");
        let tokens = provider
            .exchange(request, &code, &started.pkce_verifier, now)
            .await
            .expect("tokens");
        assert!(tokens.refresh_token.is_some(), "offline access");
        let identity = provider
            .identify(&tokens, "nonce-1", now)
            .await
            .expect("identified");
        if by_call {
            assert_eq!(identity.id, fixtures::ALICE_OBJECT_ID);
            assert_eq!(identity.label, fixtures::ALICE_UPN);
        } else {
            assert!(!identity.id.is_empty() && identity.id != fixtures::ALICE_UPN);
            assert_eq!(identity.label, fixtures::ALICE_UPN);
            let replayed = provider.identify(&tokens, "another-nonce", now).await;
            assert!(
                matches!(replayed, Err(Error::IdTokenRejected(_))),
                "{replayed:?}"
            );
        }

        let refresh_token = tokens.refresh_token.expect("kept");
        let refreshed = provider
            .refresh(&identity.id, Some(&refresh_token), now)
            .await
            .expect("refreshed");
        let rotated = refreshed.refresh_token.expect("the emulator rotates");
        assert!(provider.revokes());
        assert!(provider.revoke(&rotated).await.expect("revoked"));
        let gone = provider
            .refresh(&identity.id, Some(&rotated), now)
            .await
            .expect_err("the grant is revoked");
        assert_eq!(
            provider.grant_lost(&gone),
            Some(GrantLoss::Revoked),
            "{gone:?}"
        );
        assert_eq!(
            provider.grant_lost(&Error::Unavailable {
                message: String::new(),
                retry_after: std::time::Duration::from_secs(1),
            }),
            None
        );
    }
    assert!(emulator.counters().revoke >= 2);

    // The profile's descriptions tell an expired grant from a revoked one.
    let provider = provider(profile(
        &emulator,
        ClientAuth::RequestBody,
        id_token_identity(),
    ));
    emulator.fail_next_token_calls(1, Failure::InvalidGrant { aadsts: 70008 });
    let expired = provider
        .refresh("x", Some(&"any".to_owned().into()), Utc::now())
        .await
        .expect_err("refused");
    assert_eq!(
        provider.grant_lost(&expired),
        Some(GrantLoss::Expired),
        "{expired:?}"
    );
}
