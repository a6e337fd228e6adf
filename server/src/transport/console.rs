//! The connectors console: a static page (built from `console/` and embedded in the binary)
//! served at `/console/`, which talks to this same port over gRPC-Web with the API key the
//! user pastes. Nothing here reads a key or a connector: the page is public, the calls it
//! makes are authenticated like any other.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles only from this
//! origin, no inline script, calls only to this origin, no framing), `nosniff` and no referrer.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

/// Where the console is served; `{public_url}/console/` is also its OAuth 2.0 return URL.
pub(crate) const CONSOLE_PATH: &str = "/console/";

/// The page's policy: its own scripts, styles and calls only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The built page, embedded: (file name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../console/dist/index.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../console/dist/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../console/dist/console.css"),
    ),
];

/// The console's routes, and `/` for a person who opens the server's address in a browser.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(root))
        .route(
            "/console",
            get(|| async { Redirect::permanent(CONSOLE_PATH) }),
        )
        .route(CONSOLE_PATH, get(|| async { asset("index.html") }))
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

/// The console's addresses when it is turned off: a plain 404 saying so (the gRPC router would
/// otherwise answer an unknown path with gRPC's `UNIMPLEMENTED`).
pub(crate) fn turned_off() -> Router {
    let off = || async {
        (
            StatusCode::NOT_FOUND,
            "The console is turned off on this server (`console = false`).",
        )
    };
    Router::new()
        .route("/", get(|| async { NOT_A_PAGE }))
        .route("/console", get(off))
        .route("/console/", get(off))
        .route("/console/{*rest}", get(off))
}

/// What `/` says to anything that is not a browser (gRPC itself never asks for `/`).
const NOT_A_PAGE: (StatusCode, &str) = (
    StatusCode::NOT_FOUND,
    "This is the Connector Service's gRPC port: call it with a gRPC client (see the README).",
);

/// A browser that opens `/` goes to the console; anything else is told what the port is.
async fn root(headers: axum::http::HeaderMap) -> Response {
    let browser = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("text/html"));
    if browser {
        Redirect::to(CONSOLE_PATH).into_response()
    } else {
        NOT_A_PAGE.into_response()
    }
}

fn asset(name: &str) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, *content_type),
            // Small files, and a new binary brings new ones: always revalidated.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *bytes,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    async fn status_of(router: Router, path: &str) -> StatusCode {
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_browser_that_opens_the_root_goes_to_the_console() {
        let request = |accept: &str| {
            axum::http::Request::get("/")
                .header(header::ACCEPT, accept)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let browser = router()
            .oneshot(request("text/html,application/xhtml+xml,*/*;q=0.8"))
            .await
            .unwrap();
        assert_eq!(browser.status(), StatusCode::SEE_OTHER);
        assert_eq!(browser.headers()[header::LOCATION], CONSOLE_PATH);
        let tool = router().oneshot(request("*/*")).await.unwrap();
        assert_eq!(tool.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn turned_off_every_console_path_is_a_404() {
        for path in ["/console", "/console/", "/console/console.js"] {
            assert_eq!(
                status_of(turned_off(), path).await,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        assert_eq!(status_of(router(), "/console/").await, StatusCode::OK);
        assert_eq!(status_of(turned_off(), "/").await, StatusCode::NOT_FOUND);
        let (_, health) = tonic_health::server::health_reporter();
        let combined = tonic::service::Routes::new(health)
            .into_axum_router()
            .merge(Router::new().merge(turned_off()));
        assert_eq!(
            status_of(combined, "/console/").await,
            StatusCode::NOT_FOUND,
            "combined"
        );
    }
}
