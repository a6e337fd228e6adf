//! Microsoft Graph `GET /v1.0/me` and `GET /v1.0/organization`: what a client calls to learn
//! who signed in (user object id and name) or which organization consented (tenant id and
//! default domain).
//!
//! Tokens are checked as Graph checks them: missing, unknown or revoked → 401
//! `InvalidAuthenticationToken`; expired → 401 with Graph's lifetime message; a token without
//! a profile scope → 403. Errors use Graph's shape,
//! `{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::client_request_id;
use crate::model::{AccountKind, Tenant, User};
use crate::records::Subject;
use crate::store::{Shared, Store};

/// A Graph error.
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl GraphError {
    fn unauthenticated(message: &'static str) -> Self {
        GraphError {
            status: StatusCode::UNAUTHORIZED,
            code: "InvalidAuthenticationToken",
            message,
        }
    }

    fn render(self, now: SystemTime, headers: &HeaderMap) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": chrono::DateTime::<chrono::Utc>::from(now)
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string(),
                    "request-id": request_id,
                    "client-request-id": client_request_id(headers).unwrap_or(request_id.clone()),
                }
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        response
    }
}

/// Whom a bearer token acts for.
enum Caller<'a> {
    Delegated {
        user: &'a User,
        scopes: &'a [String],
    },
    App {
        tenant: &'a Tenant,
    },
}

/// Checks the `Authorization: Bearer` token.
fn caller<'a>(store: &'a Store, headers: &HeaderMap) -> Result<Caller<'a>, GraphError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
    let invalid = || GraphError::unauthenticated("Access token validation failure.");
    let record = store.access_tokens.get(token).ok_or_else(invalid)?;
    if record.revoked {
        return Err(invalid());
    }
    if store.now() >= record.expires_at {
        return Err(GraphError::unauthenticated(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    match &record.subject {
        Subject::User { grant } => {
            if store.grant_revoked(*grant) {
                return Err(invalid());
            }
            let user = store.grant_user(*grant).ok_or_else(invalid)?;
            Ok(Caller::Delegated {
                user,
                scopes: &record.scopes,
            })
        }
        Subject::App { tenant_id } => {
            if !store.has_admin_consent(tenant_id, &record.client_id) {
                return Err(invalid());
            }
            let tenant = store.tenant_by_id(tenant_id).ok_or_else(invalid)?;
            Ok(Caller::App { tenant })
        }
    }
}

/// Graph needs a profile permission (`User.Read` and the like) to read the signed-in user or
/// their organization. Scopes may be written bare or with Graph's resource prefix.
fn may_read_profile(scopes: &[String]) -> Result<(), GraphError> {
    let allowed = scopes.iter().any(|scope| {
        let lower = scope.to_ascii_lowercase();
        let name = lower
            .strip_prefix("https://graph.microsoft.com/")
            .unwrap_or(&lower);
        name.starts_with("user.") || name.starts_with("directory.") || name == ".default"
    });
    if allowed {
        Ok(())
    } else {
        Err(GraphError {
            status: StatusCode::FORBIDDEN,
            code: "Authorization_RequestDenied",
            message: "Insufficient privileges to complete the operation.",
        })
    }
}

fn organization_json(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.tenant_id,
        "displayName": tenant.display_name,
        "verifiedDomains": [{
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": true,
            "isInitial": true,
            "name": tenant.default_domain,
            "type": "Managed",
        }],
    })
}

/// `GET /v1.0/me` (delegated tokens only).
pub(super) async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut store = shared.lock();
    store.counters.me += 1;
    let now = store.now();
    let answer = caller(&store, &headers).and_then(|caller| match caller {
        Caller::App { .. } => Err(GraphError {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: "/me request is only valid with delegated authentication flow.",
        }),
        Caller::Delegated { user, scopes } => {
            may_read_profile(scopes)?;
            Ok(json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                "businessPhones": [],
                "displayName": user.display_name,
                "givenName": null,
                "jobTitle": null,
                "mail": user.mail,
                "mobilePhone": null,
                "officeLocation": null,
                "preferredLanguage": null,
                "surname": null,
                "userPrincipalName": user.user_principal_name,
                "id": user.object_id,
            }))
        }
    });
    match answer {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.render(now, &headers),
    }
}

/// `GET /v1.0/organization`: the token's tenant (app-only) or the signed-in user's tenant;
/// an empty list for personal accounts, which belong to no organization.
pub(super) async fn organization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let mut store = shared.lock();
    store.counters.organization += 1;
    let now = store.now();
    let answer = caller(&store, &headers).and_then(|caller| {
        let value: Vec<Value> = match caller {
            Caller::App { tenant } => vec![organization_json(tenant)],
            Caller::Delegated { user, scopes } => {
                may_read_profile(scopes)?;
                match user.kind {
                    AccountKind::Personal => Vec::new(),
                    AccountKind::Work => store
                        .tenant_by_id(&user.tenant_id)
                        .map(organization_json)
                        .into_iter()
                        .collect(),
                }
            }
        };
        Ok(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#organization",
            "value": value,
        }))
    });
    match answer {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.render(now, &headers),
    }
}
