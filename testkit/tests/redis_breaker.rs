//! `runtime::RedisHandle` against a private redis-server that the test stops, pauses and
//! restarts: no call waits longer than its deadline while Redis is away, and the handle
//! is back within a second or so of Redis answering again.

use runtime::RedisHandle;
use std::time::{Duration, Instant};
use testkit::RedisServer;

/// `SET` then `GET` through the handle; the error when the handle has no connection.
async fn round_trip(redis: &RedisHandle) -> Result<String, String> {
    let mut conn = redis.get().ok_or("no connection")?;
    let _: () = redis::cmd("SET")
        .arg("breaker:test")
        .arg("here")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("GET")
        .arg("breaker:test")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())
}

async fn wait_until_back(redis: &RedisHandle, within: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        if round_trip(redis).await.is_ok() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("Redis handle did not recover within {within:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_redis_costs_one_deadline_and_a_restarted_one_is_used_again_at_once() {
    let mut server = RedisServer::start();
    let redis = RedisHandle::connect_with_timeout(&server.url, Duration::from_millis(200)).expect("url");
    wait_until_back(&redis, Duration::from_secs(10)).await;
    assert_eq!(round_trip(&redis).await.as_deref(), Ok("here"));
    let generation = redis.generation();

    server.stop();
    // The first call finds the connection gone; every later one is refused at once.
    let started = Instant::now();
    assert!(round_trip(&redis).await.is_err());
    for _ in 0..100 {
        assert!(round_trip(&redis).await.is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "101 calls against a dead Redis took {:?}",
        started.elapsed()
    );
    assert!(!redis.is_available());
    assert!(redis.ping().await.is_err());

    server.restart();
    wait_until_back(&redis, Duration::from_secs(5)).await;
    assert!(redis.generation() > generation, "a new connection was made");
    assert!(redis.ping().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_redis_opens_the_breaker_after_one_deadline_and_closes_when_it_answers() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_with_timeout(&server.url, Duration::from_millis(200)).expect("url");
    wait_until_back(&redis, Duration::from_secs(10)).await;

    server.pause();
    let started = Instant::now();
    assert!(
        round_trip(&redis).await.is_err(),
        "a paused Redis answers nothing"
    );
    let first = started.elapsed();
    assert!(
        first < Duration::from_secs(1),
        "the deadline bounds the call: {first:?}"
    );
    assert!(redis.get().is_none(), "the breaker is open");

    server.resume();
    wait_until_back(&redis, Duration::from_secs(5)).await;
}
