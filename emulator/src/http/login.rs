//! The browser legs: `…/oauth2/v2.0/authorize` and `…/v2.0/adminconsent`, each a `GET` that
//! shows a page and a `POST` (the page's form) that carries out the decision.
//!
//! The form posts the original query parameters back as hidden fields and the POST validates
//! them all again: the page is not trusted to have kept them intact.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{error_page, found, page, pages};
use crate::aad::AadError;
use crate::authorize::{
    Decision, Rejection, decide_admin_consent, decide_authorization, validate_admin_consent,
    validate_authorization,
};
use crate::model::User;
use crate::params::Params;
use crate::store::Shared;

/// Form fields the pages add; never carried as hidden fields.
const PAGE_FIELDS: [&str; 3] = ["account", "tenant", "consent"];

fn query_params(query: Option<String>) -> Result<Params, AadError> {
    let mut params = Params::parse(query.unwrap_or_default().as_bytes())?;
    for field in PAGE_FIELDS {
        params.take(field);
    }
    Ok(params)
}

/// The decision a posted form carries in `consent` (and `field`, the chosen account/tenant).
fn posted_decision(params: &mut Params, field: &str) -> Result<(Option<String>, bool), AadError> {
    let choice = params.take(field);
    let accept = match params.take("consent").as_deref() {
        Some("accept") => true,
        Some("deny") => false,
        _ => return Err(AadError::missing("consent")),
    };
    if accept && choice.is_none() {
        return Err(AadError::missing(field));
    }
    Ok((choice, accept))
}

fn rejected(rejection: Rejection) -> Response {
    match rejection {
        Rejection::Page(error) => error_page(&error),
        Rejection::Redirect(location) => found(&location),
    }
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the sign-in and consent page.
pub(super) async fn authorize_page(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut store = shared.lock();
    store.counters.authorize += 1;
    let params = match query_params(query) {
        Ok(params) => params,
        Err(error) => return error_page(&error),
    };
    match validate_authorization(&store, &tenant, &params) {
        Ok(request) => {
            let users: Vec<User> = store.users_admitted(&request.authority).cloned().collect();
            page(
                StatusCode::OK,
                pages::authorize(&tenant, &params, &request, &users),
            )
        }
        Err(rejection) => rejected(rejection),
    }
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: accept (as `account`) or deny.
pub(super) async fn authorize_decision(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let mut store = shared.lock();
    store.counters.authorize_decisions += 1;
    let parsed = Params::parse(&body).and_then(|mut params| {
        let decision = posted_decision(&mut params, "account")?;
        Ok((params, decision))
    });
    let (params, (account, accept)) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return error_page(&error),
    };
    let request = match validate_authorization(&store, &tenant, &params) {
        Ok(request) => request,
        Err(rejection) => return rejected(rejection),
    };
    let decision = match (&account, accept) {
        (Some(account), true) => Decision::Accept(account),
        _ => Decision::Deny,
    };
    match decide_authorization(&mut store, &tenant, &request, decision) {
        Ok(location) => found(&location),
        Err(error) => error_page(&error),
    }
}

/// `GET /{tenant}/v2.0/adminconsent`: the admin consent page.
pub(super) async fn admin_consent_page(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut store = shared.lock();
    store.counters.adminconsent += 1;
    let result = query_params(query).and_then(|params| {
        let request = validate_admin_consent(&store, &tenant, &params)?;
        Ok(pages::admin_consent(&tenant, &params, &request))
    });
    match result {
        Ok(html) => page(StatusCode::OK, html),
        Err(error) => error_page(&error),
    }
}

/// `POST /{tenant}/v2.0/adminconsent`: consent for `tenant`, or deny.
pub(super) async fn admin_consent_decision(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let mut store = shared.lock();
    store.counters.adminconsent_decisions += 1;
    let result = Params::parse(&body).and_then(|mut params| {
        let (chosen, accept) = posted_decision(&mut params, "tenant")?;
        let request = validate_admin_consent(&store, &tenant, &params)?;
        let decision = match (&chosen, accept) {
            (Some(chosen), true) => Decision::Accept(chosen),
            _ => Decision::Deny,
        };
        decide_admin_consent(&mut store, &request, decision)
    });
    match result {
        Ok(location) => found(&location),
        Err(error) => error_page(&error),
    }
}
