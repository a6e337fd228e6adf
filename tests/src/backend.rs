//! The two databases every integration test runs on, and the macro that runs a test on both.

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a SQLite file in the data directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `TEST_POSTGRES_URL`.
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn(Backend)`, in modules
/// `sqlite` and `postgres`, so every integration test runs on both databases.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Postgres).await
                }
            )*
        }
    };
}
