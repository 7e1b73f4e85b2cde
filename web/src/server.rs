//! Serving a router until a shutdown signal, letting in-flight requests finish, with
//! limits that keep slow or idle clients from holding the server's connections.
//!
//! axum::serve offers no timeouts and no connection limit, so this is its accept loop over
//! hyper's HTTP/1.1 connection builder (what axum::serve uses underneath, minus HTTP/2,
//! which axum is built without here), hyper-util's graceful shutdown, and a semaphore.

use crate::ConnectionLimits;
use crate::timeouts;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and
/// waits for the requests in flight (idle connections are closed at once).
///
/// Handlers can extract `ConnectInfo<SocketAddr>`. `limits` bound how long a client may
/// take to send a request head and may stay idle between requests, and how many
/// connections are served at once: further ones are not accepted until one closes, so
/// they wait in the listen queue.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, peer, permit)) = accepted else {
            continue;
        };
        let (io, timer) = timeouts::watch(stream, limits.header_read_timeout, limits.idle_timeout);
        let router = router.clone();
        // The same per-request work as axum's `into_make_service_with_connect_info`.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = http1::Builder::new()
            .timer(timer)
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(io), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, peer = %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The next connection once a permit is free; `None` after a failed accept.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(error = %error, "could not set TCP_NODELAY");
            }
            Some((stream, peer, permit))
        }
        Err(error) if is_connection_error(&error) => None,
        Err(error) => {
            // Out of file descriptors and the like: give other tasks a moment to close
            // some, as axum::serve does.
            tracing::error!(error = %error, "accepting a connection failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// Errors of one connection that say nothing about the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
