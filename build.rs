//! Compiles `proto/` into Rust with prost + tonic, without a system `protoc`: `protox` parses the
//! .proto files in pure Rust and hands tonic-prost-build a ready descriptor set. The encoded
//! descriptor set is also written to `OUT_DIR` so the server can offer gRPC reflection.

use std::{env, fs, io, path::PathBuf};

use protox::prost::Message as _;

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: &[&str] = &["proto/connector/v1/connector_service.proto"];
const SECRET_MESSAGES: [&str; 5] = [
    ".connector.v1.AwsSessionCredentials",
    ".connector.v1.AzureStorageAccountKey",
    ".connector.v1.CredentialFields",
    ".connector.v1.RevealConnectorCredentialsResponse",
    ".connector.v1.GetAccessTokenResponse",
];

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }

    let descriptors = protox::compile(PROTO_FILES, [PROTO_ROOT])
        .map_err(|error| io::Error::other(format!("cannot compile {PROTO_ROOT}/: {error:?}")))?;

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(
        out_dir.join("connector_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Messages that carry secrets get hand-written, redacting `Debug` impls in `src/lib.rs`,
        // so logging a request or response can never print an account key or a token.
        .skip_debug(SECRET_MESSAGES)
        .compile_fds(descriptors)
}
