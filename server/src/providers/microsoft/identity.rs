//! Who signed in: the id token's checks (issuer, audience, lifetime, nonce, a signature
//! algorithm), the administrator roles Office 365 consent requires, and the Microsoft Graph
//! calls that name the user or the tenant.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{Identity, Microsoft, Tokens, Transport, describe, send_checked, transient};
use crate::providers::{Error, id_token};

/// Template ids of the Microsoft Entra directory roles that may grant tenant-wide admin consent
/// to an application: Global Administrator, Privileged Role Administrator, Cloud Application
/// Administrator and Application Administrator.
pub const CONSENTING_ROLES: [&str; 4] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "158c047a-c907-4556-b7ef-446551a6b5f7",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
];

/// The [`CONSENTING_ROLES`] by their names, as a refused caller is told them.
const CONSENTING_ROLE_NAMES: &str =
    "Global, Privileged Role, Cloud Application or Application Administrator";

/// The Microsoft claims read beyond the standard ones `id_token` checks.
#[derive(Debug, Deserialize)]
struct IdTokenClaims {
    iss: Option<String>,
    tid: Option<String>,
    oid: Option<String>,
    preferred_username: Option<String>,
    /// Directory role template ids (present when the app registration asks for them).
    #[serde(default)]
    wids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser {
    user_principal_name: Option<String>,
    mail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GraphList<T> {
    value: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphOrganization {
    id: String,
    display_name: Option<String>,
    #[serde(default)]
    verified_domains: Vec<GraphDomain>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphDomain {
    name: String,
    #[serde(default)]
    is_default: bool,
}

impl Microsoft {
    /// The id token's claims, once it passes the shared checks ([`id_token::verified_claims`])
    /// and was issued by the tenant's v2.0 issuer.
    fn verified_claims(
        &self,
        tokens: &Tokens,
        client_id: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<IdTokenClaims, Error> {
        let reject = |why: &str| Error::IdTokenRejected(why.to_owned());
        let claims: IdTokenClaims =
            id_token::verified_claims(tokens.id_token.as_deref(), client_id, nonce, now)?;
        let tenant = claims
            .tid
            .as_deref()
            .ok_or_else(|| reject("it has no tid claim"))?;
        // It goes into URL paths (the issuer, the token URL): only a GUID is accepted.
        uuid::Uuid::try_parse(tenant).map_err(|_| reject("its tid is not a tenant id"))?;
        if claims.iss.as_deref() != Some(format!("{}/{tenant}/v2.0", self.login_base).as_str()) {
            return Err(reject("it was not issued by the tenant's issuer"));
        }
        Ok(claims)
    }

    /// Who signed in: tenant and object id from the verified id token; Graph `/me` proves the
    /// access token works and gives the label (principal name or mail). Never identified by
    /// e-mail.
    pub async fn signed_in_user(
        &self,
        tokens: &Tokens,
        client_id: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, Error> {
        let claims = self.verified_claims(tokens, client_id, nonce, now)?;
        let me: GraphUser = self.graph(&tokens.access_token, "/v1.0/me").await?;
        let tenant = claims
            .tid
            .ok_or_else(|| Error::Protocol("the id token has no tid claim".into()))?;
        // The object id only: Graph's `/me` id has another form for personal accounts, and
        // mixing the two would give one account two identities.
        let object = claims
            .oid
            .ok_or_else(|| Error::Protocol("the id token has no oid claim".into()))?;
        let label = me
            .user_principal_name
            .or(me.mail)
            .or(claims.preferred_username)
            .unwrap_or_else(|| object.clone());
        Ok(Identity {
            id: format!("{tenant}/{object}"),
            label,
            pinned: None,
        })
    }

    /// The tenant of the administrator who signed in to consent for it: the verified id
    /// token's `tid`, provided its `wids` name a directory role that may grant tenant-wide
    /// consent ([`CONSENTING_ROLES`]). Anyone else is refused with [`Error::AdminRequired`],
    /// even in a tenant that has already consented: otherwise any user of such a tenant could
    /// link the whole tenant.
    pub fn signed_in_tenant(
        &self,
        tokens: &Tokens,
        client_id: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let claims = self.verified_claims(tokens, client_id, nonce, now)?;
        if !claims.wids.iter().any(|role| {
            CONSENTING_ROLES
                .iter()
                .any(|consenting| role.eq_ignore_ascii_case(consenting))
        }) {
            return Err(Error::AdminRequired {
                who_may_consent: CONSENTING_ROLE_NAMES,
            });
        }
        claims
            .tid
            .ok_or_else(|| Error::Protocol("the id token has no tid claim".into()))
    }

    /// The tenant an app-only token is for, with its default domain as the label. Confirms that
    /// the tenant from a consent callback is the one the token works in.
    pub async fn tenant(&self, tenant_id: &str, tokens: &Tokens) -> Result<Identity, Error> {
        let organizations: GraphList<GraphOrganization> = self
            .graph(&tokens.access_token, "/v1.0/organization")
            .await?;
        let organization = organizations
            .value
            .into_iter()
            .find(|organization| organization.id.eq_ignore_ascii_case(tenant_id))
            .ok_or_else(|| {
                Error::CredentialsRejected(format!("the token is not valid in tenant {tenant_id}"))
            })?;
        let label = organization
            .verified_domains
            .iter()
            .find(|domain| domain.is_default)
            .map(|domain| domain.name.clone())
            .or(organization.display_name)
            .unwrap_or_else(|| organization.id.clone());
        Ok(Identity {
            id: organization.id,
            label,
            pinned: None,
        })
    }

    async fn graph<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
    ) -> Result<T, Error> {
        let response = send_checked(
            self.http
                .get(format!("{}{path}", self.graph_base))
                .bearer_auth(access_token.expose_secret()),
        )
        .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::CredentialsRejected(format!(
                "Microsoft Graph answered {status} for {path}"
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| transient(Transport::Request(describe(&error))))?;
        serde_json::from_slice(&body).map_err(|_| {
            Error::Protocol(format!(
                "Microsoft Graph sent an unreadable answer for {path}"
            ))
        })
    }
}
