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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a connection beyond the limit waits for a free slot before it is answered
/// `503` with `Retry-After` and closed: a small, bounded wait instead of an idle
/// keep-alive connection's whole lifetime.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and
/// waits for the requests in flight (idle connections are closed at once).
///
/// Handlers can extract `ConnectInfo<SocketAddr>`. `limits` bound how long a client may
/// take to send a request head and may stay idle between requests, and how many
/// connections are served at once: a connection beyond that waits up to [`SLOT_WAIT`]
/// for one to close, and is then answered `503 SERVICE_UNAVAILABLE` with `Retry-After`;
/// as many again may wait, and beyond those a connection is closed at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // The bound address, for operators and for whoever started the service on port 0.
    if let Ok(address) = listener.local_addr() {
        tracing::info!(http.address = %address, "listening");
    }
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let waiting = Arc::new(Semaphore::new(limits.max_connections));
    // Connections that waited and got a slot come back here, to be served under `graceful`.
    let (admitted_tx, mut admitted) = mpsc::unbounded_channel::<Admitted>();
    loop {
        let (stream, peer, permit) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(admitted) = admitted.recv() => admitted,
            accepted = accept(&listener) => {
                let Some((stream, peer)) = accepted else { continue };
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => (stream, peer, permit),
                    Err(_) => {
                        wait_for_slot(stream, peer, &permits, &waiting, &admitted_tx, limits.header_read_timeout);
                        continue;
                    }
                }
            }
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

/// A connection with its slot.
type Admitted = (TcpStream, SocketAddr, OwnedSemaphorePermit);

/// Lets a connection beyond the limit wait for a slot (sent to `admitted`), or answers
/// it 503 after [`SLOT_WAIT`]; closes it at once when too many wait already.
fn wait_for_slot(
    stream: TcpStream,
    peer: SocketAddr,
    permits: &Arc<Semaphore>,
    waiting: &Arc<Semaphore>,
    admitted: &mpsc::UnboundedSender<Admitted>,
    header_read_timeout: Duration,
) {
    let Ok(waiter) = waiting.clone().try_acquire_owned() else {
        tracing::warn!(peer = %peer, "connection limit reached and its queue full; connection closed");
        return;
    };
    let (permits, admitted) = (permits.clone(), admitted.clone());
    tokio::spawn(async move {
        match tokio::time::timeout(SLOT_WAIT, permits.acquire_owned()).await {
            Ok(Ok(permit)) => {
                // The loop has stopped when this fails: the connection is closed.
                let _ = admitted.send((stream, peer, permit));
            }
            _ => {
                tracing::warn!(peer = %peer, "connection limit reached; answering 503");
                refuse(stream, header_read_timeout).await;
            }
        }
        drop(waiter);
    });
}

/// Answers the connection's first request `503` with `Retry-After`, then closes it.
async fn refuse(stream: TcpStream, header_read_timeout: Duration) {
    let service = hyper::service::service_fn(|_: Request<Incoming>| async {
        let refusal = crate::ApiError::unavailable("the server is at its connection limit; retry shortly");
        Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(refusal))
    });
    let served = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(error = %error, "refused connection ended with an error");
    }
}

/// The next connection; `None` after a failed accept.
async fn accept(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok((stream, peer)) => {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(error = %error, "could not set TCP_NODELAY");
            }
            Some((stream, peer))
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
