//! Browsers on the gRPC port (issue 13): gRPC-Web over HTTP/1.1 with the same answers and error
//! details as gRPC, CORS only for the configured origins, and the console's page served with a
//! strict policy (or not at all when turned off), its address accepted as a return URL.

use connector_client::pb;
use connector_tests::{
    Backend, ConfigHook, OAuthWorld, ServerOptions, TestServer, on_both_backends, unique_parent,
};
use prost::Message as _;

on_both_backends!(grpc_web_calls_answer_like_grpc_with_error_details);

/// An HTTP/1.1-only client, as a browser's `fetch` to a plaintext origin is.
fn http1() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A gRPC-Web call: the message framed (flag 0, length), the frames of the answer (flag, bytes)
/// and its headers.
async fn grpc_web(
    server: &TestServer,
    method: &str,
    message: &impl prost::Message,
) -> (reqwest::header::HeaderMap, Vec<(u8, Vec<u8>)>) {
    let encoded = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    body.extend_from_slice(&encoded);
    let answer = http1()
        .post(format!(
            "{}/connector.v1.ConnectorService/{method}",
            server.endpoint()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(
            "authorization",
            format!("Bearer {}", connector_tests::ADMIN_KEY),
        )
        .body(body)
        .send()
        .await
        .expect("gRPC-Web over HTTP/1.1");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-type"],
        "application/grpc-web+proto"
    );
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 5 {
        let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        frames.push((rest[0], rest[5..5 + length].to_vec()));
        rest = &rest[5 + length..];
    }
    assert!(rest.is_empty(), "whole frames only");
    (headers, frames)
}

/// `name: value` from a trailer frame (or the headers of a trailers-only answer).
fn trailer(headers: &reqwest::header::HeaderMap, frames: &[(u8, Vec<u8>)], name: &str) -> String {
    if let Some(value) = headers.get(name) {
        return value.to_str().unwrap().to_owned();
    }
    let (_, trailers) = frames
        .iter()
        .find(|(flag, _)| flag & 0x80 != 0)
        .expect("a trailer frame");
    String::from_utf8_lossy(trailers)
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in the trailers"))
}

async fn grpc_web_calls_answer_like_grpc_with_error_details(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (headers, frames) = grpc_web(
        &server,
        "ListConnectorTypes",
        &pb::ListConnectorTypesRequest {},
    )
    .await;
    assert_eq!(trailer(&headers, &frames, "grpc-status"), "0");
    let (_, message) = frames.first().expect("a message frame");
    let types = pb::ListConnectorTypesResponse::decode(&message[..]).unwrap();
    let over_grpc = server
        .client()
        .await
        .list_connector_types(pb::ListConnectorTypesRequest {})
        .await
        .unwrap();
    assert_eq!(types, over_grpc, "the same answer as over gRPC");

    // An error: its code and its google.rpc details, as a browser client decodes them.
    let missing = format!(
        "{}/connectors/0193a7b0-0000-7000-8000-000000000000",
        unique_parent()
    );
    let (headers, frames) = grpc_web(
        &server,
        "GetConnector",
        &pb::GetConnectorRequest { name: missing },
    )
    .await;
    assert_eq!(trailer(&headers, &frames, "grpc-status"), "5");
    let details = trailer(&headers, &frames, "grpc-status-details-bin");
    use base64::Engine as _;
    let details = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(details.trim_end_matches('='))
        .unwrap();
    let status = tonic_types::pb::Status::decode(&details[..]).unwrap();
    let info = status
        .details
        .iter()
        .find(|any| any.type_url.ends_with("google.rpc.ErrorInfo"))
        .map(|any| tonic_types::pb::ErrorInfo::decode(&any.value[..]).unwrap())
        .expect("ErrorInfo");
    assert_eq!(info.reason, "CONNECTOR_NOT_FOUND");
    assert_eq!(info.domain, "connector-service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_calls_are_allowed_only_from_configured_origins() {
    let preflight = |server: &TestServer, origin: &str| {
        http1()
            .request(
                reqwest::Method::OPTIONS,
                format!(
                    "{}/connector.v1.ConnectorService/ListConnectors",
                    server.endpoint()
                ),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-grpc-web,x-user-agent",
            )
            .send()
    };
    let allowed = |answer: &reqwest::Response| {
        answer
            .headers()
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap().to_owned())
    };

    // Default: no origin may call from elsewhere (the console is same-origin).
    let closed = TestServer::start(Backend::Sqlite).await;
    let answer = preflight(&closed, "https://ops.example.com").await.unwrap();
    assert_eq!(allowed(&answer), None);

    let mut options = ServerOptions::new(Backend::Sqlite);
    options.configure = Some(ConfigHook::new(|config| {
        config.cors_allowed_origins = vec!["https://ops.example.com".to_owned()];
    }));
    let open = TestServer::start_with(options).await;
    let answer = preflight(&open, "https://ops.example.com").await.unwrap();
    assert_eq!(allowed(&answer).as_deref(), Some("https://ops.example.com"));
    assert!(
        answer
            .headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "no cookies: the key is a bearer header"
    );
    // The call itself: the browser may read the status and the error details.
    let call = http1()
        .post(format!(
            "{}/connector.v1.ConnectorService/ListConnectorTypes",
            open.endpoint()
        ))
        .header("origin", "https://ops.example.com")
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(
            "authorization",
            format!("Bearer {}", connector_tests::ADMIN_KEY),
        )
        .body(vec![0u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&call).as_deref(), Some("https://ops.example.com"));
    let exposed = call.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{header} readable: {exposed}");
    }
    let answer = preflight(&open, "https://evil.example").await.unwrap();
    assert_eq!(allowed(&answer), None, "an origin not configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_can_be_turned_off() {
    let server = TestServer::start(Backend::Sqlite).await;
    let http = http1();
    // Issue 20: the server's address opened in a browser goes to the console, not to a blank
    // application/grpc answer.
    let root = http
        .get(format!("{}/", server.endpoint()))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/console/");
    let answer = http
        .get(format!("{}/console", server.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection());
    assert_eq!(answer.headers()["location"], "/console/");

    let page = http
        .get(format!("{}/console/", server.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("console.js"), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains(" style=\""),
        "no inline script or style: {html}"
    );
    let script = http
        .get(format!("{}/console/console.js", server.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let missing = http
        .get(format!("{}/console/secrets.txt", server.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let mut options = ServerOptions::new(Backend::Sqlite);
    options.configure = Some(ConfigHook::new(|config| config.console_enabled = false));
    let without = TestServer::start_with(options).await;
    let page = http
        .get(format!("{}/console/", without.endpoint()))
        .send()
        .await
        .unwrap();
    let status = page.status();
    let body = page.text().await.unwrap();
    assert_eq!(status, 404, "turned off: {body}");
    assert!(body.contains("turned off"));
}

/// Starts an orchestrator-completed OneDrive authorization that returns to `return_url`.
async fn start(
    world: &OAuthWorld,
    return_url: String,
) -> Result<pb::StartAuthorizationResponse, tonic::Status> {
    world
        .server
        .client()
        .await
        .start_authorization(pb::StartAuthorizationRequest {
            parent: unique_parent(),
            connector_type: "connectorTypes/onedrive-consumer".into(),
            return_url,
            orchestrator_completes: true,
            ..Default::default()
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_is_a_return_url_only_while_it_is_served() {
    let world = OAuthWorld::start(Backend::Sqlite).await;
    let console = format!("{}/console/", world.server.endpoint());
    start(&world, console.clone())
        .await
        .expect("the console's own page");
    let elsewhere = start(&world, format!("{}/elsewhere", world.server.endpoint()))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), tonic::Code::InvalidArgument);

    let without = OAuthWorld::start_customized(Backend::Sqlite, false, |options| {
        options.configure = Some(ConfigHook::new(|config| config.console_enabled = false));
    })
    .await;
    let refused = start(&without, format!("{}/console/", without.server.endpoint()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}
