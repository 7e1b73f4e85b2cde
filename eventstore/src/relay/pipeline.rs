//! Publishing with a bounded window: sends go out one after the other without waiting
//! for their acknowledgements, and at most `window` acknowledgements are awaited at once,
//! so a batch costs about one round trip instead of one per event, with bounded memory.

use super::RelayError;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;

/// What a pipelined batch came to.
#[derive(Debug, Default)]
pub(crate) struct Published<K> {
    /// Keys of the items whose publish was acknowledged, in no particular order.
    pub acked: Vec<K>,
    /// The first failure; once one is seen nothing more is sent (what was sent is still
    /// awaited), so an unreachable server costs one ack timeout, not one per event.
    pub error: Option<RelayError>,
}

/// Sends every item in order with `send` (which returns once the message is on its way,
/// with a future of its acknowledgement), keeping at most `window` acknowledgements
/// outstanding.
pub(crate) async fn publish_all<T, K, S, SendFut, Ack>(
    items: impl IntoIterator<Item = T>,
    window: usize,
    key: impl Fn(&T) -> K,
    mut send: S,
) -> Published<K>
where
    S: FnMut(T) -> SendFut,
    SendFut: Future<Output = Result<Ack, RelayError>>,
    Ack: Future<Output = Result<(), RelayError>>,
{
    let window = window.max(1);
    let mut in_flight = FuturesUnordered::new();
    let mut published = Published {
        acked: Vec::new(),
        error: None,
    };
    for item in items {
        // Take what is acknowledged already (cheap: only woken futures are polled), and
        // wait for room while the window is full.
        while let Some(Some(done)) = in_flight.next().now_or_never() {
            published.settle(done);
        }
        while in_flight.len() >= window {
            if let Some(done) = in_flight.next().await {
                published.settle(done);
            }
        }
        if published.error.is_some() {
            break;
        }
        let key = key(&item);
        match send(item).await {
            Ok(ack) => in_flight.push(async move { (key, ack.await) }),
            Err(error) => {
                published.error = Some(error);
                break;
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        published.settle(done);
    }
    published
}

impl<K> Published<K> {
    fn settle(&mut self, (key, result): (K, Result<(), RelayError>)) {
        match result {
            Ok(()) => self.acked.push(key),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }
}

#[cfg(test)]
mod tests;
