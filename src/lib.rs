//! The Connector Service contract: Rust types and tonic stubs generated from `proto/`.
//!
//! Everything generated lives in [`pb`], so the rest of the workspace names the contract in one
//! way (`connector_api::pb::Connector`) and generated code never leaks lints into hand-written
//! modules. [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

#![forbid(unsafe_code)]

/// Generated protobuf messages and gRPC stubs for package `connector.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/connector.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `proto/`, including its imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/connector_descriptor.bin"));

/// Redacted `Debug` for the messages that carry secrets (see `build.rs`): field names and
/// non-secret values only.
mod redacted_debug {
    use std::fmt;

    use super::pb;

    impl fmt::Debug for pb::AzureStorageAccountKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("AzureStorageAccountKey")
                .field("account_name", &self.account_name)
                .field("account_key", &"<redacted>")
                .finish()
        }
    }

    /// Field names only: whether a value is secret depends on the connector type, so none is
    /// shown.
    impl fmt::Debug for pb::CredentialFields {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
            names.sort_unstable();
            f.debug_struct("CredentialFields")
                .field("values", &format_args!("<redacted: {}>", names.join(", ")))
                .finish()
        }
    }

    impl fmt::Debug for pb::AwsSessionCredentials {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("AwsSessionCredentials")
                .field("access_key_id", &self.access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish()
        }
    }

    impl fmt::Debug for pb::RevealConnectorCredentialsResponse {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
            names.sort_unstable();
            f.debug_struct("RevealConnectorCredentialsResponse")
                .field("fields", &format_args!("<redacted: {}>", names.join(", ")))
                .finish()
        }
    }

    impl fmt::Debug for pb::GetAccessTokenResponse {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("GetAccessTokenResponse")
                .field("access_token", &"<redacted>")
                .field("token_type", &self.token_type)
                .field("expire_time", &self.expire_time)
                .field("scopes", &self.scopes)
                .field("resource_url", &self.resource_url)
                .field("aws_session_credentials", &self.aws_session_credentials)
                .finish()
        }
    }

    // `skip_debug` on a message also covers its nested enum, which holds nothing secret.
    impl fmt::Debug for pb::get_access_token_response::TokenType {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.as_str_name())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::pb;

        #[test]
        fn secrets_do_not_show_in_debug_output() {
            let request = pb::CreateConnectorRequest {
                credentials: Some(pb::Credentials {
                    kind: Some(pb::credentials::Kind::AzureStorageAccountKey(
                        pb::AzureStorageAccountKey {
                            account_name: "store".into(),
                            account_key: "SECRET-KEY".into(),
                        },
                    )),
                }),
                ..Default::default()
            };
            let token = pb::GetAccessTokenResponse {
                access_token: "sig=SECRET".into(),
                aws_session_credentials: Some(pb::AwsSessionCredentials {
                    access_key_id: "ASIAEXAMPLE".into(),
                    secret_access_key: "SECRET-ACCESS-KEY".into(),
                }),
                ..Default::default()
            };
            let fields = pb::Credentials {
                kind: Some(pb::credentials::Kind::Fields(pb::CredentialFields {
                    values: [
                        ("account_name".to_owned(), "SECRET-NAME".to_owned()),
                        ("password".to_owned(), "SECRET-PASSWORD".to_owned()),
                    ]
                    .into(),
                })),
            };
            let revealed = pb::RevealConnectorCredentialsResponse {
                fields: [("password".to_owned(), "SECRET-PASSWORD".to_owned())].into(),
            };
            let shown = format!("{request:?} {token:?} {fields:?} {revealed:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("store"));
            assert!(shown.contains("account_name, password"), "{shown}");
        }
    }
}
