//! Request coalescing: concurrent callers asking for the same key share one fetch.
//!
//! The first caller (the leader) spawns the fetch as its own task, so a caller that goes
//! away (client disconnect, timeout) never cancels the fetch the others wait on. The
//! task forgets its key when it ends, also when it panics, so a later miss fetches
//! afresh: nothing is cached here, only in-flight work is shared.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// The shared fetch ended without a value (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shared fetch ended without a value")]
pub struct FetchAbandoned;

type Flight<V> = Shared<BoxFuture<'static, Result<V, FetchAbandoned>>>;

/// In-flight fetches by key.
pub struct SingleFlight<K, V: Clone> {
    flights: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            flights: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// No fetch in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `fetch()` for `key`; when a fetch for `key` is already running, waits
    /// for that one instead and `fetch` is never called.
    pub async fn run<F, Fut>(&self, key: K, fetch: F) -> Result<V, FetchAbandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    let flight = self.start(key.clone(), fetch());
                    flights.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    /// Keys with a fetch in flight right now.
    pub fn in_flight(&self) -> usize {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn start<Fut>(&self, key: K, fetch: Fut) -> Flight<V>
    where
        Fut: Future<Output = V> + Send + 'static,
    {
        let forget = Forget {
            flights: self.flights.clone(),
            key,
        };
        let task = tokio::spawn(async move {
            let _forget = forget;
            fetch.await
        });
        async move { task.await.map_err(|_| FetchAbandoned) }
            .boxed()
            .shared()
    }
}

/// Removes a key from the map when its fetch task ends, however it ends.
struct Forget<K: Hash + Eq, V: Clone> {
    flights: Arc<Mutex<HashMap<K, Flight<V>>>>,
    key: K,
}

impl<K: Hash + Eq, V: Clone> Drop for Forget<K, V> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::join_all;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    /// A fetch that counts its calls and finishes only when the test releases it.
    fn gated_fetch(
        calls: &Arc<AtomicUsize>,
        gate: Shared<oneshot::Receiver<()>>,
    ) -> impl FnOnce() -> BoxFuture<'static, u32> + use<> {
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let _ = gate.await;
                42
            }
            .boxed()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_callers_for_one_key_cause_one_fetch() {
        let flights = SingleFlight::<u32, u32>::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, gate) = oneshot::channel::<()>();
        let gate = gate.shared();
        let callers = (0..50).map(|_| flights.run(7, gated_fetch(&calls, gate.clone())));
        // `join` polls the callers first, so all 50 have joined before the fetch is released.
        let (results, ()) = futures::join!(join_all(callers), async {
            let _ = release.send(());
        });
        assert_eq!(results, vec![Ok(42); 50]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn different_keys_fetch_separately_and_a_finished_fetch_is_not_reused() {
        let flights = SingleFlight::<u32, u32>::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, gate) = oneshot::channel::<()>();
        let gate = gate.shared();
        let (a, b, ()) = futures::join!(
            flights.run(1, gated_fetch(&calls, gate.clone())),
            flights.run(2, gated_fetch(&calls, gate.clone())),
            async {
                let _ = release.send(());
            }
        );
        assert_eq!((a, b), (Ok(42), Ok(42)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(flights.in_flight(), 0);

        assert_eq!(flights.run(1, gated_fetch(&calls, gate)).await, Ok(42));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_panicking_fetch_is_reported_and_does_not_block_the_key() {
        let flights = SingleFlight::<u32, u32>::new();
        let failed = flights.run(1, || async { panic!("fetch failed") }).await;
        assert_eq!(failed, Err(FetchAbandoned));
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run(1, || async { 5 }).await, Ok(5));
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_cancel_the_shared_fetch() {
        let flights = Arc::new(SingleFlight::<u32, u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, gate) = oneshot::channel::<()>();
        let gate = gate.shared();
        let leader = tokio::spawn({
            let flights = flights.clone();
            let fetch = gated_fetch(&calls, gate.clone());
            async move { flights.run(3, fetch).await }
        });
        wait_until(|| flights.in_flight() == 1).await;
        leader.abort();
        let _ = leader.await;
        let (follower, ()) = futures::join!(flights.run(3, gated_fetch(&calls, gate)), async {
            let _ = release.send(());
        });
        assert_eq!(follower, Ok(42));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Yields until `ready` holds (the spawned leader registers on another task).
    async fn wait_until(ready: impl Fn() -> bool) {
        while !ready() {
            tokio::task::yield_now().await;
        }
    }
}
