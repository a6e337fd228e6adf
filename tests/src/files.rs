//! Files a test writes (configuration) or inspects (secrets at rest).

use std::{io::Write as _, path::Path};

/// Reads a file's bytes (for at-rest checks).
pub fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Whether `haystack` contains `needle`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Writes a file (test configuration).
pub fn write_file(path: &Path, content: &str) {
    let mut file = std::fs::File::create(path).expect("create file");
    file.write_all(content.as_bytes()).expect("write file");
}
