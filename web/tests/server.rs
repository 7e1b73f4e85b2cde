//! The server over real TCP: slow and idle clients are closed, connections beyond the
//! limit wait, keep-alive and peer addresses work, and shutdown lets a request finish.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use web::ConnectionLimits;

/// Generous bound for "closed/answered within": the tests never assert speed.
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    slow_started: Arc<Notify>,
}

async fn start(limits: ConnectionLimits) -> Server {
    let slow_started = Arc::new(Notify::new());
    let started = slow_started.clone();
    let router = Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(move || async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "finished"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(web::serve(listener, router, limits, shutdown.clone()));
    Server {
        address,
        shutdown,
        task,
        slow_started,
    }
}

fn limits(header: u64, idle: u64, max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(header),
        idle_timeout: Duration::from_secs(idle),
        max_connections,
    }
}

async fn send(stream: &mut TcpStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
}

/// Reads one response (head and `content-length` body) and returns its status and body.
async fn response(stream: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&bytes).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("length"))
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                let status = head[9..12].parse().expect("status");
                return (status, text[end + 4..end + 4 + length].to_owned());
            }
        }
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(read > 0, "closed before a whole response");
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// Reads until the server closes the connection, failing after `PATIENCE`.
async fn closed(stream: &mut TcpStream) -> String {
    let mut rest = Vec::new();
    timeout(PATIENCE, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => rest.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await
    .expect("the server should have closed the connection");
    String::from_utf8_lossy(&rest).to_string()
}

#[tokio::test]
async fn a_connection_that_sends_half_a_request_line_is_closed_after_the_header_timeout() {
    let server = start(limits(1, 300, 16)).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream.write_all(b"GET /peer HT").await.expect("write");
    let rest = closed(&mut stream).await;
    assert!(rest.is_empty(), "no answer is owed to half a request: {rest}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = start(limits(1, 300, 16)).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    closed(&mut stream).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_and_closes_after_the_idle_one() {
    let server = start(limits(1, 4, 16)).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    send(&mut stream, "/peer").await;
    assert_eq!(response(&mut stream).await.0, 200);
    // Idle for twice the header timeout: still served.
    tokio::time::sleep(Duration::from_secs(2)).await;
    send(&mut stream, "/peer").await;
    assert_eq!(response(&mut stream).await.0, 200);
    // Idle past the idle timeout: closed.
    closed(&mut stream).await;
}

#[tokio::test]
async fn a_keep_alive_connection_is_reused_and_handlers_see_the_peer_address() {
    let server = start(ConnectionLimits::default()).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    let local = stream.local_addr().expect("local address").to_string();
    for _ in 0..3 {
        send(&mut stream, "/peer").await;
        assert_eq!(response(&mut stream).await, (200, local.clone()));
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_a_moment_for_one_to_close() {
    let server = start(limits(5, 300, 1)).await;
    let mut first = TcpStream::connect(server.address).await.expect("connect");
    send(&mut first, "/peer").await;
    assert_eq!(response(&mut first).await.0, 200);

    let mut second = TcpStream::connect(server.address).await.expect("queued");
    send(&mut second, "/peer").await;
    let mut byte = [0u8; 1];
    let waited = timeout(Duration::from_millis(700), second.read(&mut byte)).await;
    assert!(
        waited.is_err(),
        "the second connection was served beyond the limit"
    );

    drop(first);
    let answered = timeout(PATIENCE, response(&mut second)).await;
    assert_eq!(answered.expect("served once the first closed").0, 200);
}

#[tokio::test]
async fn a_connection_that_finds_no_free_slot_in_time_is_answered_503_with_retry_after() {
    let server = start(limits(5, 300, 1)).await;
    let mut first = TcpStream::connect(server.address).await.expect("connect");
    send(&mut first, "/peer").await;
    assert_eq!(response(&mut first).await.0, 200);

    let mut second = TcpStream::connect(server.address).await.expect("accepted");
    send(&mut second, "/peer").await;
    let answer = closed(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 2"), "{answer}");
    assert!(answer.contains("SERVICE_UNAVAILABLE"), "{answer}");

    // The connection holding the slot is still served.
    send(&mut first, "/peer").await;
    assert_eq!(response(&mut first).await.0, 200);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_stops() {
    let server = start(ConnectionLimits::default()).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    send(&mut stream, "/slow").await;
    server.slow_started.notified().await;
    server.shutdown.cancel();
    assert_eq!(response(&mut stream).await, (200, "finished".to_owned()));
    let stopped = timeout(PATIENCE, server.task).await.expect("serve returns");
    stopped.expect("no panic").expect("no error");
    assert!(TcpStream::connect(server.address).await.is_err());
}
