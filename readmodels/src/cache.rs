//! The Redis copy of the read models: one JSON document per row, written by the projector
//! after each commit and filled by readers on a miss (cache-aside), always rebuildable
//! from Postgres. One implementation serves every kind of document ([`Cached`]).
//!
//! Key `<prefix>:<kind>:<id>` (`<prefix>:k<n>:<kind>:<id>` in the key space n of a later
//! read-model generation, see [`Keyspace`]) holds one of
//! * `{"version": n, "<kind>": {...}}`: the row at stream version n;
//! * `{"version": n, "deleted": true}`: a deleted row (a tombstone, no personal data);
//! * `{"version": 0, "missing": true}`: a negative entry, written only if nothing is there.
//!
//! A document whose content also changes with events of other streams (a product's review
//! statistics) carries a second counter, `"derived": m`. Every write goes through one
//! script that refuses a document when the stored one is at least as new in both counters,
//! so a slow reader filling the cache from an older Postgres read can never overwrite newer
//! data, whoever writes first. Two documents where each is newer in one counter never meet:
//! every document is made from one Postgres read of its row (both counters in one
//! statement, and each only grows), so of any two, the later read is newer in both. A
//! document built any other way would break that.

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::PgPool;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Where a document stands: its stream's version, and the count of events of other
/// streams that changed it (0 for documents of one stream only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version {
    /// Version of the row's own stream.
    pub stream: i64,
    /// Events of other streams applied to the row.
    pub derived: i64,
}

impl Version {
    /// The version of a document of one stream only.
    pub fn of_stream(stream: i64) -> Self {
        Self { stream, derived: 0 }
    }
}

/// A read model that has a Redis copy: one document per row, loaded from Postgres by id.
pub trait Cached: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The key segment and the JSON field of its documents, e.g. `user`.
    const KIND: &'static str;
    /// The table holding one row per document (its ids are scanned by a refill).
    const TABLE: &'static str;

    /// Its id.
    fn id(&self) -> Uuid;
    /// Its version, the guard of every write.
    fn version(&self) -> Version;
    /// Puts back what the document keeps only in its version (nothing by default).
    fn restore(&mut self, version: Version) {
        let _ = version;
    }
    /// The rows of `ids` as documents (unknown ids are left out), from Postgres.
    fn load(
        pool: &PgPool,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Entry<Self>>, sqlx::Error>> + Send;
}

/// One row as its document holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<T> {
    /// A row readers see.
    Live(T),
    /// A deleted row, kept as a tombstone at its last version.
    Deleted {
        /// Its id.
        id: Uuid,
        /// Its version when deleted.
        version: i64,
    },
}

impl<T: Cached> Entry<T> {
    /// The id of the row.
    pub fn id(&self) -> Uuid {
        match self {
            Self::Live(value) => value.id(),
            Self::Deleted { id, .. } => *id,
        }
    }

    /// The row readers see, `None` once deleted.
    pub fn live(self) -> Option<T> {
        match self {
            Self::Live(value) => Some(value),
            Self::Deleted { .. } => None,
        }
    }
}

/// What the cache knows about one id.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup<T> {
    /// A live row.
    Hit(T),
    /// Known to be deleted or (recently) missing.
    Absent,
    /// Not cached.
    Miss,
}

/// A stored document. Its value sits under the field named by the kind, which is why its
/// (de)serialisation is written here rather than derived.
struct Document<T> {
    version: Version,
    value: Option<T>,
    deleted: bool,
    missing: bool,
}

impl<T: Cached> Serialize for Document<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", &self.version.stream)?;
        if self.version.derived != 0 {
            map.serialize_entry("derived", &self.version.derived)?;
        }
        if let Some(value) = &self.value {
            map.serialize_entry(T::KIND, value)?;
        }
        if self.deleted {
            map.serialize_entry("deleted", &true)?;
        }
        if self.missing {
            map.serialize_entry("missing", &true)?;
        }
        map.end()
    }
}

impl<'de, T: Cached> Deserialize<'de> for Document<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Cached> Visitor<'de> for Fields<T> {
            type Value = Document<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a cached {} document", T::KIND)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut doc = Document {
                    version: Version::default(),
                    value: None,
                    deleted: false,
                    missing: false,
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "version" => doc.version.stream = map.next_value()?,
                        "derived" => doc.version.derived = map.next_value()?,
                        "deleted" => doc.deleted = map.next_value()?,
                        "missing" => doc.missing = map.next_value()?,
                        kind if kind == T::KIND => doc.value = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(doc)
            }
        }

        deserializer.deserialize_map(Fields(PhantomData))
    }
}

/// Sets KEYS[1] to ARGV[3] with TTL ARGV[4] unless the stored document is at least as new
/// in both counters (stream version ARGV[1], derived count ARGV[2]).
const SET_IF_NEWER: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and tonumber(doc['version']) then
    local stream = tonumber(doc['version'])
    local derived = tonumber(doc['derived']) or 0
    if stream >= tonumber(ARGV[1]) and derived >= tonumber(ARGV[2]) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
"#;

/// Keys asked for per `SCAN` step when clearing.
const SCAN_COUNT: usize = 1000;

/// The Redis key space the documents of the live read-model generation are in (see
/// `projector::generations`): 1 is the plain prefix, every later one `<prefix>:k<n>`.
/// Shared between clones, so a reader that follows the live generation moves every
/// document cache it holds at once.
#[derive(Debug, Clone)]
pub struct Keyspace(Arc<AtomicI64>);

impl Keyspace {
    /// The key space of the first generation.
    pub const FIRST: i64 = 1;

    /// A key space held at `space` until [`Keyspace::set`].
    pub fn new(space: i64) -> Self {
        Self(Arc::new(AtomicI64::new(space)))
    }

    /// The key space now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Moves to `space`.
    pub fn set(&self, space: i64) {
        self.0.store(space, Ordering::Relaxed);
    }

    /// The prefix of documents in `space` under `prefix`.
    pub fn prefix_of(prefix: &str, space: i64) -> String {
        if space <= Self::FIRST {
            prefix.to_owned()
        } else {
            format!("{prefix}:k{space}")
        }
    }
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new(Self::FIRST)
    }
}

/// Reads and writes the documents of one kind under one key prefix, in one key space.
#[derive(Debug)]
pub struct DocumentCache<T> {
    prefix: String,
    keyspace: Keyspace,
    ttl: Duration,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for DocumentCache<T> {
    fn clone(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            keyspace: self.keyspace.clone(),
            ttl: self.ttl,
            kind: PhantomData,
        }
    }
}

impl<T: Cached> DocumentCache<T> {
    /// Documents under `<prefix>:<kind>:` (key space 1), kept for `ttl`.
    pub fn new(prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            prefix: prefix.into(),
            keyspace: Keyspace::default(),
            ttl,
            kind: PhantomData,
        }
    }

    /// The same documents in the key space `keyspace` follows, now and as it moves.
    pub fn following(mut self, keyspace: Keyspace) -> Self {
        self.keyspace = keyspace;
        self
    }

    /// The same documents in key space `space`, whatever this one follows.
    pub fn at(&self, space: i64) -> Self {
        self.clone().following(Keyspace::new(space))
    }

    /// The key prefix shared with the other Redis data of the deployment.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key space its keys are in now.
    pub fn keyspace(&self) -> i64 {
        self.keyspace.get()
    }

    /// The key of one document.
    pub fn key(&self, id: Uuid) -> String {
        let prefix = Keyspace::prefix_of(&self.prefix, self.keyspace.get());
        format!("{prefix}:{}:{id}", T::KIND)
    }

    /// The pattern matching every key of this kind in its key space (for rebuilds).
    pub fn pattern(&self) -> String {
        let prefix = Keyspace::prefix_of(&self.prefix, self.keyspace.get());
        format!("{prefix}:{}:*", T::KIND)
    }

    /// Looks an id up.
    pub async fn get(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        id: Uuid,
    ) -> redis::RedisResult<CacheLookup<T>> {
        let raw: Option<String> = redis::cmd("GET").arg(self.key(id)).query_async(conn).await?;
        Ok(
            match raw.and_then(|raw| serde_json::from_str::<Document<T>>(&raw).ok()) {
                None => CacheLookup::Miss,
                Some(Document {
                    value: Some(mut value),
                    version,
                    ..
                }) => {
                    value.restore(version);
                    CacheLookup::Hit(value)
                }
                Some(_) => CacheLookup::Absent,
            },
        )
    }

    /// Stores a live row unless a document at least as new is cached.
    pub async fn put(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        value: &T,
    ) -> redis::RedisResult<bool> {
        let doc = Document {
            version: value.version(),
            value: Some(value.clone()),
            deleted: false,
            missing: false,
        };
        self.set_if_newer(conn, value.id(), &doc).await
    }

    /// Stores a tombstone unless a document at least as new is cached.
    pub async fn put_deleted(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        id: Uuid,
        version: i64,
    ) -> redis::RedisResult<bool> {
        let doc = Document::<T> {
            version: Version::of_stream(version),
            value: None,
            deleted: true,
            missing: false,
        };
        self.set_if_newer(conn, id, &doc).await
    }

    /// Stores what Postgres holds for one row: the row, or its tombstone.
    pub async fn put_entry(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        entry: &Entry<T>,
    ) -> redis::RedisResult<bool> {
        match entry {
            Entry::Live(value) => self.put(conn, value).await,
            Entry::Deleted { id, version } => self.put_deleted(conn, *id, *version).await,
        }
    }

    /// Caches "no such row" for `ttl`, only if nothing is cached (any real write wins
    /// over it).
    pub async fn put_missing(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        id: Uuid,
        ttl: Duration,
    ) -> redis::RedisResult<()> {
        let doc = Document::<T> {
            version: Version::default(),
            value: None,
            deleted: false,
            missing: true,
        };
        redis::cmd("SET")
            .arg(self.key(id))
            .arg(encode(&doc))
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<Option<String>>(conn)
            .await
            .map(|_| ())
    }

    /// Deletes every document of this kind and prefix; returns how many.
    pub async fn clear(&self, conn: &mut impl redis::aio::ConnectionLike) -> redis::RedisResult<u64> {
        let pattern = escape_glob(&self.pattern());
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(conn)
                .await?;
            if !keys.is_empty() {
                deleted += redis::cmd("DEL").arg(&keys).query_async::<u64>(conn).await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn set_if_newer(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        id: Uuid,
        doc: &Document<T>,
    ) -> redis::RedisResult<bool> {
        let set: i64 = redis::Script::new(SET_IF_NEWER)
            .key(self.key(id))
            .arg(doc.version.stream)
            .arg(doc.version.derived)
            .arg(encode(doc))
            .arg(self.ttl.as_secs().max(1))
            .invoke_async(conn)
            .await?;
        Ok(set == 1)
    }
}

fn encode<T: Cached>(doc: &Document<T>) -> String {
    serde_json::to_string(doc).unwrap_or_default()
}

/// A key pattern with the prefix's own glob characters escaped, so `SCAN MATCH` never
/// reaches into another prefix; the final `*` stays a wildcard.
fn escape_glob(pattern: &str) -> String {
    let (prefix, star) = pattern.split_at(pattern.len().saturating_sub(1));
    let mut escaped = String::with_capacity(pattern.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push_str(star);
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        id: Uuid,
        version: i64,
        #[serde(skip)]
        derived: i64,
    }

    impl Cached for Thing {
        const KIND: &'static str = "thing";
        const TABLE: &'static str = "things";

        fn id(&self) -> Uuid {
            self.id
        }

        fn version(&self) -> Version {
            Version {
                stream: self.version,
                derived: self.derived,
            }
        }

        fn restore(&mut self, version: Version) {
            self.derived = version.derived;
        }

        async fn load(_: &PgPool, _: &[Uuid]) -> Result<Vec<Entry<Self>>, sqlx::Error> {
            Ok(Vec::new())
        }
    }

    fn doc(value: Option<Thing>, version: Version) -> Document<Thing> {
        Document {
            version,
            value,
            deleted: false,
            missing: false,
        }
    }

    #[test]
    fn a_document_keeps_its_value_under_its_kind_and_its_counters_beside() {
        let thing = Thing {
            id: Uuid::nil(),
            version: 4,
            derived: 2,
        };
        let raw = encode(&doc(Some(thing.clone()), thing.version()));
        let json: serde_json::Value = serde_json::from_str(&raw).expect("json");
        assert_eq!(json["version"], 4);
        assert_eq!(json["derived"], 2);
        assert_eq!(json["thing"]["version"], 4);
        let back: Document<Thing> = serde_json::from_str(&raw).expect("decodes");
        assert_eq!(back.version, thing.version());
        assert_eq!(back.value.map(|t| t.id), Some(thing.id));
    }

    #[test]
    fn a_document_of_one_stream_has_no_derived_counter_and_unknown_fields_are_ignored() {
        let raw = encode(&doc(None, Version::of_stream(3)));
        assert_eq!(raw, r#"{"version":3}"#);
        let back: Document<Thing> =
            serde_json::from_str(r#"{"version":3,"other":{"a":[1]},"deleted":true}"#).expect("decodes");
        assert!(back.deleted && back.value.is_none());
        assert_eq!(back.version, Version::of_stream(3));
    }

    #[test]
    fn later_key_spaces_have_keys_of_their_own_and_followers_move_together() {
        let live = Keyspace::default();
        let cache = DocumentCache::<Thing>::new("shop", Duration::from_secs(1)).following(live.clone());
        let pinned = cache.at(1);
        let id = Uuid::nil();
        assert_eq!(cache.key(id), format!("shop:thing:{id}"));
        live.set(3);
        assert_eq!(cache.key(id), format!("shop:k3:thing:{id}"));
        assert_eq!(cache.clone().pattern(), "shop:k3:thing:*");
        assert_eq!(pinned.key(id), format!("shop:thing:{id}"), "a pinned cache stays");
        assert_eq!(cache.prefix(), "shop", "the shared prefix does not move");
    }

    #[test]
    fn glob_characters_of_the_prefix_are_escaped_but_the_wildcard_is_kept() {
        assert_eq!(escape_glob("cqrs:user:*"), "cqrs:user:*");
        assert_eq!(escape_glob("a*b?:user:*"), "a\\*b\\?:user:*");
    }
}
