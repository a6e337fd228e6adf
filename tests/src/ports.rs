//! Loopback ports for the peers a test starts, and waiting for a peer to listen.

use std::time::Duration;

/// A port that was free a moment ago.
///
/// Never the same port twice in one test process: tests run in parallel, and a port handed to
/// one helper process (ChromeDriver, wsgidav, moto) is free again until that process binds it,
/// so the OS could hand it to another test meanwhile.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("bind an ephemeral port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on a loopback port (a startup, not a clock).
pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
