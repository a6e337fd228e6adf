//! `/_emulator/…`: the knobs and counters over HTTP, for tests that run the binary (any
//! language) rather than the library. Each endpoint mirrors an [`crate::Emulator`] method;
//! bodies and answers are JSON; errors are `{"error": "…"}` with 400 (or 404 for an unknown
//! client, tenant or user).
//!
//! There is no authentication: the emulator is a test tool listening on loopback.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authorize::Decision;
use crate::knobs::{Counters, Failure};
use crate::model::{Client, Tenant, User};
use crate::records::RegistrationError;
use crate::sign_in::{SignInError, admin_consent_decision, authorization_decision};
use crate::store::Shared;

type Answer = Result<Json<Value>, AdminError>;

/// An admin call that could not be carried out: `{"error": "…"}` (plus `aadsts` for a
/// simulated browser step that ended on an error page).
#[derive(Debug)]
struct AdminError {
    status: StatusCode,
    message: String,
    aadsts: Option<u32>,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = match self.aadsts {
            Some(code) => json!({ "error": self.message, "aadsts": code }),
            None => json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}

pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(health))
        .route("/registrations", get(registrations))
        .route("/clients", post(register_client))
        .route("/clients/{client_id}/redirect_uris", post(add_redirect_uri))
        .route("/tenants", post(register_tenant))
        .route("/users", post(register_user))
        .route("/lifetimes", get(lifetimes).post(set_lifetimes))
        .route("/grants/revoke", post(revoke_grant))
        .route("/admin_consents", post(grant_admin_consent))
        .route("/admin_consents/revoke", post(revoke_admin_consent))
        .route("/failures/token", post(fail_token_calls))
        .route("/failures/revoke", post(fail_revoke_calls))
        .route("/failures", delete(clear_failures))
        .route("/counters", get(counters))
        .route("/counters/reset", post(reset_counters))
        .route("/clock/advance", post(advance_clock))
        .route("/authorize", post(authorize))
        .route("/adminconsent", post(adminconsent))
}

fn bad_request(message: impl std::fmt::Display) -> AdminError {
    AdminError {
        status: StatusCode::BAD_REQUEST,
        message: message.to_string(),
        aadsts: None,
    }
}

fn registration_error(error: RegistrationError) -> AdminError {
    let status = match error {
        RegistrationError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::NOT_FOUND,
    };
    AdminError {
        status,
        message: error.to_string(),
        aadsts: None,
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, AdminError> {
    payload
        .map(|Json(value)| value)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

fn ok() -> Answer {
    Ok(Json(json!({ "ok": true })))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn registrations(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let store = shared.lock();
    let clients: Vec<&Client> = store.clients().collect();
    let consents: Vec<Value> = store
        .admin_consents()
        .map(|(tenant_id, client_id)| json!({ "tenant_id": tenant_id, "client_id": client_id }))
        .collect();
    Json(json!({
        "clients": clients,
        "tenants": store.tenants(),
        "users": store.users(),
        "admin_consents": consents,
    }))
}

async fn register_client(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<Client>, JsonRejection>,
) -> Answer {
    let client = body(payload)?;
    shared
        .lock()
        .register_client(client)
        .map_err(registration_error)?;
    ok()
}

#[derive(Deserialize)]
struct RedirectUri {
    redirect_uri: String,
}

async fn add_redirect_uri(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    payload: Result<Json<RedirectUri>, JsonRejection>,
) -> Answer {
    let RedirectUri { redirect_uri } = body(payload)?;
    shared
        .lock()
        .add_redirect_uri(&client_id, &redirect_uri)
        .map_err(registration_error)?;
    ok()
}

async fn register_tenant(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<Tenant>, JsonRejection>,
) -> Answer {
    let tenant = body(payload)?;
    shared
        .lock()
        .register_tenant(tenant)
        .map_err(registration_error)?;
    ok()
}

async fn register_user(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<User>, JsonRejection>,
) -> Answer {
    let user = body(payload)?;
    shared
        .lock()
        .register_user(user)
        .map_err(registration_error)?;
    ok()
}

/// Lifetimes in seconds; absent fields are left as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifetimesBody {
    access_token_secs: Option<u64>,
    refresh_token_secs: Option<u64>,
    code_secs: Option<u64>,
}

async fn lifetimes(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let lifetimes = shared.lock().lifetimes;
    Json(json!({
        "access_token_secs": lifetimes.access_token.as_secs(),
        "refresh_token_secs": lifetimes.refresh_token.as_secs(),
        "code_secs": lifetimes.authorization_code.as_secs(),
    }))
}

async fn set_lifetimes(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<LifetimesBody>, JsonRejection>,
) -> Answer {
    let changes = body(payload)?;
    {
        let mut store = shared.lock();
        let lifetimes = &mut store.lifetimes;
        if let Some(secs) = changes.access_token_secs {
            lifetimes.access_token = Duration::from_secs(secs);
        }
        if let Some(secs) = changes.refresh_token_secs {
            lifetimes.refresh_token = Duration::from_secs(secs);
        }
        if let Some(secs) = changes.code_secs {
            lifetimes.authorization_code = Duration::from_secs(secs);
        }
    }
    Ok(lifetimes(State(shared)).await)
}

#[derive(Deserialize)]
struct GrantRef {
    user: String,
    client_id: String,
}

async fn revoke_grant(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<GrantRef>, JsonRejection>,
) -> Answer {
    let GrantRef { user, client_id } = body(payload)?;
    let revoked = shared
        .lock()
        .revoke_grants(&user, &client_id)
        .map_err(registration_error)?;
    Ok(Json(json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
struct ConsentRef {
    tenant_id: String,
    client_id: String,
}

async fn grant_admin_consent(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<ConsentRef>, JsonRejection>,
) -> Answer {
    let ConsentRef {
        tenant_id,
        client_id,
    } = body(payload)?;
    shared
        .lock()
        .grant_admin_consent(&tenant_id, &client_id)
        .map_err(registration_error)?;
    ok()
}

async fn revoke_admin_consent(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<ConsentRef>, JsonRejection>,
) -> Answer {
    let ConsentRef {
        tenant_id,
        client_id,
    } = body(payload)?;
    let revoked = shared.lock().revoke_admin_consent(&tenant_id, &client_id);
    Ok(Json(json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureBody {
    #[serde(default = "one")]
    count: u32,
    failure: Failure,
}

fn one() -> u32 {
    1
}

async fn fail_token_calls(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<FailureBody>, JsonRejection>,
) -> Answer {
    let FailureBody { count, failure } = body(payload)?;
    let mut store = shared.lock();
    let queue = &mut store.failures.token;
    queue.extend(std::iter::repeat_n(failure, count as usize));
    Ok(Json(json!({ "pending": queue.len() })))
}

async fn fail_revoke_calls(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<FailureBody>, JsonRejection>,
) -> Answer {
    let FailureBody { count, failure } = body(payload)?;
    let mut store = shared.lock();
    let queue = &mut store.failures.revoke;
    queue.extend(std::iter::repeat_n(failure, count as usize));
    Ok(Json(json!({ "pending": queue.len() })))
}

async fn clear_failures(State(shared): State<Arc<Shared>>) -> Answer {
    shared.lock().failures.clear();
    ok()
}

async fn counters(State(shared): State<Arc<Shared>>) -> Json<Counters> {
    Json(shared.lock().counters)
}

async fn reset_counters(State(shared): State<Arc<Shared>>) -> Json<Counters> {
    Json(std::mem::take(&mut shared.lock().counters))
}

#[derive(Deserialize)]
struct AdvanceBody {
    secs: u64,
}

async fn advance_clock(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<AdvanceBody>, JsonRejection>,
) -> Answer {
    let AdvanceBody { secs } = body(payload)?;
    shared.lock().advance_clock(Duration::from_secs(secs));
    ok()
}

/// `{"authorization_url", "account", "consent": "accept" | "deny"}` or
/// `{"admin_consent_url", "tenant_id", "consent"}`.
#[derive(Deserialize)]
struct BrowserStep {
    #[serde(alias = "admin_consent_url")]
    authorization_url: String,
    #[serde(alias = "tenant_id")]
    account: Option<String>,
    consent: String,
}

fn browser_answer(result: Result<String, SignInError>) -> Answer {
    match result {
        Ok(location) => Ok(Json(json!({ "location": location }))),
        Err(error) => Err(AdminError {
            status: StatusCode::BAD_REQUEST,
            message: error.to_string(),
            aadsts: Some(error.aadsts),
        }),
    }
}

fn decision(step: &BrowserStep) -> Result<Decision<'_>, AdminError> {
    match (step.consent.as_str(), step.account.as_deref()) {
        ("deny", _) => Ok(Decision::Deny),
        ("accept", Some(choice)) => Ok(Decision::Accept(choice)),
        ("accept", None) => Err(bad_request("accepting needs the account (or tenant_id)")),
        _ => Err(bad_request("consent must be \"accept\" or \"deny\"")),
    }
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<BrowserStep>, JsonRejection>,
) -> Answer {
    let step = body(payload)?;
    let decision = decision(&step)?;
    browser_answer(authorization_decision(
        &shared,
        &step.authorization_url,
        decision,
    ))
}

async fn adminconsent(
    State(shared): State<Arc<Shared>>,
    payload: Result<Json<BrowserStep>, JsonRejection>,
) -> Answer {
    let step = body(payload)?;
    let decision = decision(&step)?;
    browser_answer(admin_consent_decision(
        &shared,
        &step.authorization_url,
        decision,
    ))
}
