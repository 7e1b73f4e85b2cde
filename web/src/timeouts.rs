//! Two deadlines for reading a request head: the header-read timeout and the keep-alive
//! idle timeout.
//!
//! hyper has one timer for this, `header_read_timeout`, which starts when the server begins
//! waiting for a request (the connection opened or the previous response went out) and ends
//! with the head. Alone it would close every idle keep-alive connection after the short
//! header timeout, or let a half-sent head linger for the long idle timeout. Neither hyper,
//! hyper-util nor tower can tell "nothing sent yet" from "half a head sent", so this module
//! gives hyper a [`Timer`] of our own, one per connection, whose sleeps consult a count of
//! reads kept by [`CountingIo`]:
//!
//! - waiting for the first request of a connection: the header timeout;
//! - waiting for a later request: the idle timeout while no byte has come, then the header
//!   timeout from the first byte on.
//!
//! hyper starts this timer only to read a head, never while a request is served (that is
//! `REQUEST_TIMEOUT_SECONDS`). The cost per request is what hyper's own timer costs (one
//! boxed sleep) plus a relaxed atomic add per read.

use hyper::rt::{Sleep, Timer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Reads that brought bytes, shared by one connection's IO and its timer.
#[derive(Debug, Default)]
struct Reads(AtomicU64);

impl Reads {
    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connection's IO that counts the reads that brought bytes.
pub(crate) struct CountingIo<T> {
    io: T,
    reads: Arc<Reads>,
}

/// The timer to give hyper for one connection.
pub(crate) struct HeadTimer {
    reads: Arc<Reads>,
    header: Duration,
    idle: Duration,
    /// Whether the first request's head has been waited for already.
    started: AtomicBool,
}

/// Wraps a connection's IO and makes the timer that watches it.
pub(crate) fn watch<T>(io: T, header: Duration, idle: Duration) -> (CountingIo<T>, HeadTimer) {
    let reads = Arc::new(Reads::default());
    let timer = HeadTimer {
        reads: reads.clone(),
        header,
        idle,
        started: AtomicBool::new(false),
    };
    (CountingIo { io, reads }, timer)
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    /// hyper asks for `now + header_read_timeout` when it starts waiting for a head; the
    /// deadline is ours to choose.
    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let first = !self.started.swap(true, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        Box::pin(HeadSleep {
            sleep: tokio::time::sleep_until(now + if first { self.header } else { self.idle }),
            reads: self.reads.clone(),
            seen: self.reads.count(),
            header: self.header,
            receiving: first,
        })
    }
}

pin_project_lite::pin_project! {
    /// The wait for one request head.
    struct HeadSleep {
        #[pin]
        sleep: tokio::time::Sleep,
        reads: Arc<Reads>,
        seen: u64,
        header: Duration,
        receiving: bool,
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        // hyper polls this right after a read that left the head incomplete, so the
        // first byte is noticed as it comes.
        if !*this.receiving && this.reads.count() != *this.seen {
            *this.receiving = true;
            let deadline = tokio::time::Instant::now() + *this.header;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.poll(cx)
    }
}

impl Sleep for HeadSleep {}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.reads.0.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
