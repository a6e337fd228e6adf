//! An emulator of the Microsoft identity platform and the bits of Microsoft Graph that
//! Connector Service uses, as a real HTTP server on loopback, for black-box tests.
//!
//! It is a small but strict OAuth 2.0 authorization server: the authorization-code grant with
//! PKCE (S256 only) and exact redirect URI matching, refresh tokens that rotate on every use,
//! the client-credentials grant after an administrator's consent, Graph `/v1.0/me` and
//! `/v1.0/organization`, and an RFC 7009 revocation endpoint. Errors carry Microsoft's AADSTS
//! codes and JSON shape. Knobs inject failures (500, 429, a hang, `invalid_grant`), revoke
//! grants, change lifetimes and move the clock; counters show how often each endpoint was
//! called.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use identity_emulator::{Emulator, Failure, fixtures};
//!
//! let emulator = Emulator::builder()
//!     .redirect_uri("http://127.0.0.1:8080/oauth/callback")
//!     .start()
//!     .await?;
//! // Point the client at emulator.base_url() instead of https://login.microsoftonline.com
//! // and emulator.graph_url() instead of https://graph.microsoft.com/v1.0, with
//! // fixtures::CLIENT_ID / fixtures::CLIENT_SECRET.
//! # let authorization_url = String::new();
//! let callback = emulator.complete_authorization(&authorization_url, fixtures::ALICE_UPN)?;
//! emulator.fail_next_token_calls(1, Failure::Status500);
//! assert_eq!(emulator.counters().refresh, 0);
//! # Ok(()) }
//! ```
//!
//! See `emulator/README.md` for the endpoints, knobs and the binary.

#![forbid(unsafe_code)]

mod aad;
mod authorize;
mod config;
mod emulator;
pub mod fixtures;
mod http;
mod jwt;
mod knobs;
mod model;
mod params;
mod records;
mod sign_in;
mod store;
mod token;

pub use config::{AdminConsent, ConfigError, EmulatorConfig};
pub use emulator::{Emulator, EmulatorBuilder, StartError};
pub use jwt::ID_TOKEN_SIGNING_KEY;
pub use knobs::{Counters, Failure, IdTokenForgery, Lifetimes};
pub use model::{
    AccountKind, CONSUMER_TENANT_ID, Client, Flavour, GRAPH_DEFAULT_SCOPE, Tenant, User,
};
pub use records::RegistrationError;
pub use sign_in::SignInError;
