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
