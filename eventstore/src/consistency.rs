//! Read-your-writes: what a request appended, as the `X-Consistency-Token` of its answer.
//!
//! The command API runs each request inside [`recording`]; every commit of the engine adds
//! the streams it wrote and their new versions ([`record`]). The token lists them, and the
//! query API, given the token back, waits until each stream's read-model row reflects at
//! least that version. The token names stream versions, not a global position: a read model
//! is one row per stream with its version, so "caught up" is one indexed look-up per stream,
//! whatever else is projected meanwhile.
//!
//! Wire form: `v1;` then `<stream type>:<stream id>:<version>` entries separated by `,`,
//! e.g. `v1;order:0192…:1,product:0192…:7`. It carries no secret: a forged token can only
//! make its own request wait (bounded), and a parsed token is capped at [`MAX_ENTRIES`].

use crate::EventEnvelope;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use uuid::Uuid;

/// The header that carries the token, on write answers and on reads.
pub const HEADER: &str = "x-consistency-token";

/// The most streams one token may name (an order of 50 lines writes 51).
pub const MAX_ENTRIES: usize = 100;

/// Streams and the versions a read must reflect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsistencyToken {
    /// `(stream type, stream id)` → version.
    streams: BTreeMap<(String, Uuid), i64>,
}

/// A token that is not one this API wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a consistency token: {0}")]
pub struct MalformedToken(&'static str);

impl ConsistencyToken {
    /// Whether it names no stream.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Every `(stream type, stream id, version)`, by stream type then id.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Uuid, i64)> {
        self.streams
            .iter()
            .map(|((stream_type, id), version)| (stream_type.as_str(), *id, *version))
    }

    /// Adds the streams of `envelopes`, keeping each stream's highest version.
    pub fn add(&mut self, envelopes: &[EventEnvelope]) {
        for envelope in envelopes {
            let version = self
                .streams
                .entry((envelope.stream_type.clone(), envelope.stream_id))
                .or_insert(envelope.stream_version);
            *version = (*version).max(envelope.stream_version);
        }
    }

    /// Reads the wire form.
    pub fn parse(raw: &str) -> Result<Self, MalformedToken> {
        let body = raw
            .trim()
            .strip_prefix("v1;")
            .ok_or(MalformedToken("it must start with `v1;`"))?;
        let mut streams = BTreeMap::new();
        for entry in body.split(',') {
            let mut parts = entry.splitn(3, ':');
            let (Some(stream_type), Some(id), Some(version)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(MalformedToken("an entry is not `<type>:<id>:<version>`"));
            };
            let valid_type = !stream_type.is_empty()
                && stream_type.len() <= 64
                && stream_type.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !valid_type {
                return Err(MalformedToken("a stream type is not lower-case letters"));
            }
            let id = Uuid::parse_str(id).map_err(|_| MalformedToken("a stream id is not a UUID"))?;
            let version: i64 = version
                .parse()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or(MalformedToken("a version is not a positive integer"))?;
            let known = streams.entry((stream_type.to_owned(), id)).or_insert(version);
            *known = (*known).max(version);
            if streams.len() > MAX_ENTRIES {
                return Err(MalformedToken("it names too many streams"));
            }
        }
        Ok(Self { streams })
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v1;")?;
        for (index, (stream_type, id, version)) in self.entries().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{stream_type}:{id}:{version}")?;
        }
        Ok(())
    }
}

tokio::task_local! {
    static WRITTEN: RefCell<ConsistencyToken>;
}

/// Runs `work`, collecting what the engine commits meanwhile on this task.
pub async fn recording<F: Future>(work: F) -> (F::Output, ConsistencyToken) {
    WRITTEN
        .scope(RefCell::new(ConsistencyToken::default()), async move {
            let output = work.await;
            let written = WRITTEN.with(|written| written.take());
            (output, written)
        })
        .await
}

/// Adds committed events to the token of the request being handled (nothing outside
/// [`recording`], e.g. work spawned after answering).
pub(crate) fn record(envelopes: &[EventEnvelope]) {
    let _ = WRITTEN.try_with(|written| written.borrow_mut().add(envelopes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_what_it_wrote_and_keeps_each_streams_highest_version() {
        let (order, product) = (Uuid::now_v7(), Uuid::now_v7());
        let token = ConsistencyToken::parse(&format!(
            "v1;product:{product}:7,order:{order}:1,product:{product}:9"
        ))
        .expect("parses");
        let entries: Vec<_> = token.entries().collect();
        assert_eq!(entries, [("order", order, 1), ("product", product, 9)]);
        assert_eq!(ConsistencyToken::parse(&token.to_string()), Ok(token));
    }

    #[test]
    fn anything_else_is_refused() {
        let id = Uuid::now_v7();
        let too_many: Vec<String> = (0..=MAX_ENTRIES)
            .map(|_| format!("order:{}:1", Uuid::now_v7()))
            .collect();
        for raw in [
            String::new(),
            "v2;order:x:1".to_owned(),
            "v1;".to_owned(),
            format!("v1;order:{id}"),
            format!("v1;order:{id}:0"),
            format!("v1;order:{id}:-3"),
            format!("v1;Order:{id}:1"),
            "v1;order:not-a-uuid:1".to_owned(),
            format!("v1;order:{id}:1,"),
            format!("v1;{}", too_many.join(",")),
        ] {
            assert!(ConsistencyToken::parse(&raw).is_err(), "{raw}");
        }
    }

    fn appended(stream_type: &str, stream_id: Uuid, stream_version: i64) -> EventEnvelope {
        EventEnvelope {
            id: Uuid::now_v7(),
            event_type: format!("{stream_type}.changed"),
            schema_version: 1,
            stream_type: stream_type.to_owned(),
            stream_id,
            stream_version,
            position: 1,
            occurred_at: chrono::Utc::now(),
            correlation_id: None,
            causation_id: None,
            actor_id: None,
            data: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn a_recording_collects_what_is_committed_inside_it_only() {
        let (order, product) = (Uuid::now_v7(), Uuid::now_v7());
        record(&[appended("order", Uuid::now_v7(), 1)]);
        let ((), token) = recording(async {
            record(&[appended("order", order, 1)]);
            tokio::task::yield_now().await;
            record(&[appended("order", order, 2), appended("product", product, 3)]);
        })
        .await;
        let entries: Vec<_> = token.entries().collect();
        assert_eq!(entries, [("order", order, 2), ("product", product, 3)]);
        let ((), nothing) = recording(async {}).await;
        assert!(nothing.is_empty());
    }
}
