//! The HTML a browser sees: the sign-in + consent page, the admin consent page and the error
//! page.
//!
//! Deliberately plain (no script) with stable element ids, so a WebDriver test can drive them:
//! `account` (a `<select>` of the users allowed at the tenant), `tenant` (a `<select>` of
//! tenants), and the submit buttons `accept` and `deny`. Every value is HTML-escaped: query
//! parameters come from whoever built the URL.

use std::fmt::Write as _;

use crate::aad::AadError;
use crate::authorize::{AdminConsentRequest, AuthorizationRequest};
use crate::model::User;
use crate::params::Params;

const STYLE: &str = "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f2f2f2;\
margin:0}main{max-width:440px;margin:48px auto;background:#fff;padding:32px 44px;\
box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:24px;font-weight:600}label{display:block;\
margin:16px 0 4px}select{width:100%;padding:6px}.buttons{margin-top:24px;text-align:right}\
button{padding:6px 20px;margin-left:8px}#accept{background:#0067b8;color:#fff;border:0}\
.note{color:#666;font-size:13px}code{word-break:break-all}";

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} - Identity Emulator</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// The request's own parameters as hidden fields, so the POST carries the same request.
fn hidden_fields(params: &Params) -> String {
    let mut fields = String::new();
    for (name, value) in params.iter() {
        let _ = write!(
            fields,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    fields
}

fn buttons() -> &'static str {
    "<div class=\"buttons\">\
     <button type=\"submit\" id=\"deny\" name=\"consent\" value=\"deny\">Cancel</button>\
     <button type=\"submit\" id=\"accept\" name=\"consent\" value=\"accept\">Accept</button>\
     </div>"
}

/// The sign-in and consent page of `/{segment}/oauth2/v2.0/authorize`.
pub(crate) fn authorize(
    segment: &str,
    params: &Params,
    request: &AuthorizationRequest,
    users: &[User],
) -> String {
    let mut options = String::new();
    let hint = request.login_hint.as_deref();
    for user in users {
        let selected = if hint.is_some_and(|hint| user.is(hint)) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{}\"{selected}>{} ({})</option>",
            escape(&user.user_principal_name),
            escape(&user.display_name),
            escape(&user.user_principal_name)
        );
    }
    let mut scopes = String::new();
    for scope in &request.scopes {
        let _ = write!(scopes, "<li><code>{}</code></li>", escape(scope));
    }
    let no_users = if users.is_empty() {
        "<p class=\"note\" id=\"no-accounts\">No account can sign in here.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Sign in</h1>\
         <p><strong>{client}</strong> wants to access your account and:</p><ul id=\"scopes\">{scopes}</ul>\
         <form id=\"consent-form\" method=\"post\" action=\"/{segment}/oauth2/v2.0/authorize\">\
         {hidden}<label for=\"account\">Account</label>\
         <select id=\"account\" name=\"account\">{options}</select>{no_users}{buttons}</form>\
         <p class=\"note\">Identity Emulator · tenant <code>{segment}</code></p>",
        client = escape(&request.client_name),
        segment = escape(segment),
        hidden = hidden_fields(params),
        buttons = buttons(),
    );
    document("Sign in", &body)
}

/// The admin consent page of `/{segment}/v2.0/adminconsent`.
pub(crate) fn admin_consent(
    segment: &str,
    params: &Params,
    request: &AdminConsentRequest,
) -> String {
    let mut options = String::new();
    for tenant in &request.tenants {
        let _ = write!(
            options,
            "<option value=\"{}\">{} ({})</option>",
            escape(&tenant.tenant_id),
            escape(&tenant.display_name),
            escape(&tenant.default_domain)
        );
    }
    let body = format!(
        "<h1>Permissions requested</h1>\
         <p><strong>{client}</strong> asks an administrator to grant it access to the whole \
         organization: <code id=\"scope\">{scope}</code></p>\
         <form id=\"consent-form\" method=\"post\" action=\"/{segment}/v2.0/adminconsent\">\
         {hidden}<label for=\"tenant\">Organization</label>\
         <select id=\"tenant\" name=\"tenant\">{options}</select>{buttons}</form>",
        client = escape(&request.client_name),
        scope = escape(
            request
                .scope
                .as_deref()
                .unwrap_or("(the app's configured permissions)")
        ),
        segment = escape(segment),
        hidden = hidden_fields(params),
        buttons = buttons(),
    );
    document("Permissions requested", &body)
}

/// The error page (the browser is not redirected).
pub(crate) fn error(error: &AadError) -> String {
    let body = format!(
        "<h1>Sorry, but we’re having trouble signing you in.</h1>\
         <p id=\"error-code\">AADSTS{code}</p><p id=\"error\">{error}</p>\
         <p id=\"error-description\">{message}</p>",
        code = error.code,
        error = escape(error.error),
        message = escape(&error.message),
    );
    document("Error", &body)
}
