//! Test support, written once: starting the real server on `127.0.0.1:0` over SQLite or a fresh
//! PostgreSQL database, the peers it talks to, API keys, and assertions on rich gRPC errors.
//!
//! One module per peer: [`azurite`], [`postgres`], [`sshd`], [`webdav`], [`moto`], [`emulator`]
//! (the identity emulator), [`browser`] (headless Chromium) and [`server`] (the server under
//! test). Everything a test file uses is re-exported here, so tests name `connector_tests::X`.
//!
//! Tests talk to the server only through `connector-client` (and grpcurl / Python for the
//! cross-language checks). External tools come from `scripts/test` through environment
//! variables: `TEST_POSTGRES_URL`, `AZURITE_BLOB_BIN`, `GRPCURL_BIN`, `BUF_BIN`, `TEST_PYTHON`.

#![forbid(unsafe_code)]

pub mod assertions;
pub mod azurite;
pub mod backend;
pub mod browser;
pub mod calls;
pub mod emulator;
pub mod files;
pub mod moto;
pub mod ports;
pub mod postgres;
pub mod readme;
pub mod requests;
pub mod server;
pub mod sshd;
pub mod tools;
pub mod webdav;

pub use connector_client;
pub use connector_server;

pub use assertions::{assert_error, assert_invalid_field, violated_fields};
pub use azurite::{
    Azurite, HangingServer, STORAGE_ACCOUNTS, StorageAccount, azure_error_endpoint,
    hanging_endpoint,
};
pub use backend::Backend;
pub use calls::{next_event, server_events, token_storm};
pub use emulator::{
    OAuthWorld, RETURN_URL, callback_request, confirm_at_callback, oauth_options, query_param,
};
pub use files::{contains_bytes, read_bytes, write_file};
pub use moto::{AwsKey, Moto};
pub use ports::{free_port, wait_for_port};
pub use postgres::{PrivatePostgres, drop_postgres_database, fresh_postgres_database};
pub use readme::readme_script;
pub use requests::{
    azure_create, azure_create_with_key, azure_credentials, create_request, named_credentials,
    unique_account, unique_parent,
};
pub use server::{
    ADMIN_KEY, ConfigHook, MICROSOFT_TYPES, OAuthOptions, SCOPED_ACCOUNT, SCOPED_KEY, ServerBinary,
    ServerOptions, TestServer, random_master_key, start_second_process, wait_until_serving,
};
pub use sshd::SshServer;
pub use tools::{tool_env, workspace_binary};
pub use webdav::WebDavServer;
