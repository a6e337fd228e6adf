//! Assertions on rich gRPC errors (ErrorInfo reasons, BadRequest violations).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Asserts a status code and ErrorInfo reason; returns the ErrorInfo metadata.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str) -> HashMap<String, String> {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
    assert!(!info.domain.is_empty());
    info.metadata
}

/// The fields named by the BadRequest violations of a status.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT with a violation on `field`.
#[track_caller]
pub fn assert_invalid_field(status: &Status, field: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "unexpected status: {status:?}"
    );
    let fields = violated_fields(status);
    assert!(
        fields.iter().any(|f| f == field),
        "no violation on `{field}` in {fields:?} ({status:?})"
    );
}
