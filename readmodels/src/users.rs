//! The users read model: table `users_view` in Postgres (the durable copy) and one
//! Redis document per user (the hot copy, always rebuildable from Postgres).
//!
//! Redis key `<prefix>:user:<id>` holds JSON, one of
//! * `{"version": n, "user": {...}}`: a live user at stream version n;
//! * `{"version": n, "deleted": true}`: a deleted user (tombstone, no personal data);
//! * `{"version": 0, "missing": true}`: negative cache entry, written only if absent.
//!
//! Every write goes through a script that keeps the higher version, so a slow reader
//! re-filling the cache from an older Postgres row can never overwrite newer data.

use chrono::{DateTime, Utc};
use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// A user as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Email address (normalised to lower case).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `user` or `admin`.
    pub role: String,
    /// Stream version this view reflects (also the `ETag`).
    pub version: i64,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user as stored in `users_view`, tombstones included.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    /// User id (the stream id).
    pub id: Uuid,
    /// Email address; `None` once deleted.
    pub email: Option<String>,
    /// Display name; `None` once deleted.
    pub name: Option<String>,
    /// `user` or `admin`.
    pub role: String,
    /// Stream version of the last event applied: the projection's checkpoint for this user.
    pub version: i64,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
    /// When the last applied event occurred.
    pub updated_at: DateTime<Utc>,
    /// When the user was deleted; a deleted row never changes its fields again.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The tables a list of users is read from (for the query API's page cache).
pub const TABLES: &[&str] = &["users_view"];

/// Columns of `users_view` in [`UserRow`] order.
pub const ROW_COLUMNS: &str = "id, email, name, role, version, created_at, updated_at, deleted_at";

impl UserRow {
    /// The document readers see, `None` for a deleted user.
    pub fn view(&self) -> Option<UserView> {
        if self.deleted_at.is_some() {
            return None;
        }
        Some(UserView {
            id: self.id,
            email: self.email.clone()?,
            name: self.name.clone()?,
            role: self.role.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Columns of `users_view` in [`UserView`] order.
pub const USER_COLUMNS: &str = "id, email, name, role, version, created_at, updated_at";

/// A live user from Postgres, `None` when unknown or deleted.
pub async fn find_user(pool: &PgPool, id: Uuid) -> Result<Option<UserView>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users_view WHERE id = $1 AND deleted_at IS NULL");
    sqlx::query_as::<_, UserView>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// What the cache knows about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLookup {
    /// A live user.
    Hit(UserView),
    /// Known to be deleted or (recently) missing.
    Absent,
    /// Not cached.
    Miss,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<UserView>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    missing: bool,
}

/// Sets KEYS[1] to ARGV[2] with TTL ARGV[3] unless it holds a version >= ARGV[1].
const SET_IF_NEWER: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and tonumber(doc['version']) and tonumber(doc['version']) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"#;

/// Reads and writes user documents under one key prefix.
#[derive(Debug, Clone)]
pub struct UserCache {
    prefix: String,
    ttl: Duration,
}

impl UserCache {
    /// Documents under `<prefix>:user:`, kept for `ttl`.
    pub fn new(prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            prefix: prefix.into(),
            ttl,
        }
    }

    /// The key of one user.
    pub fn key(&self, id: Uuid) -> String {
        format!("{}:user:{id}", self.prefix)
    }

    /// The pattern matching every user key (for rebuilds).
    pub fn pattern(&self) -> String {
        format!("{}:user:*", self.prefix)
    }

    /// Looks a user up.
    pub async fn get(&self, conn: &mut impl ConnectionLike, id: Uuid) -> redis::RedisResult<CacheLookup> {
        let raw: Option<String> = redis::cmd("GET").arg(self.key(id)).query_async(conn).await?;
        Ok(
            match raw.and_then(|raw| serde_json::from_str::<Document>(&raw).ok()) {
                None => CacheLookup::Miss,
                Some(Document { user: Some(user), .. }) => CacheLookup::Hit(user),
                Some(_) => CacheLookup::Absent,
            },
        )
    }

    /// Stores a live user unless a newer version is cached.
    pub async fn put(&self, conn: &mut impl ConnectionLike, user: &UserView) -> redis::RedisResult<bool> {
        let doc = Document {
            version: user.version,
            user: Some(user.clone()),
            deleted: false,
            missing: false,
        };
        self.set_if_newer(conn, user.id, &doc).await
    }

    /// Stores a tombstone for a deleted user unless a newer version is cached.
    pub async fn put_deleted(
        &self,
        conn: &mut impl ConnectionLike,
        id: Uuid,
        version: i64,
    ) -> redis::RedisResult<bool> {
        let doc = Document {
            version,
            user: None,
            deleted: true,
            missing: false,
        };
        self.set_if_newer(conn, id, &doc).await
    }

    /// Caches "no such user" for `ttl`, only if nothing is cached (a projector write
    /// always wins over it).
    pub async fn put_missing(
        &self,
        conn: &mut impl ConnectionLike,
        id: Uuid,
        ttl: Duration,
    ) -> redis::RedisResult<()> {
        let doc = Document {
            version: 0,
            user: None,
            deleted: false,
            missing: true,
        };
        let raw = serde_json::to_string(&doc).unwrap_or_default();
        redis::cmd("SET")
            .arg(self.key(id))
            .arg(raw)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<Option<String>>(conn)
            .await
            .map(|_| ())
    }

    async fn set_if_newer(
        &self,
        conn: &mut impl ConnectionLike,
        id: Uuid,
        doc: &Document,
    ) -> redis::RedisResult<bool> {
        let raw = serde_json::to_string(doc).unwrap_or_default();
        let set: i64 = redis::Script::new(SET_IF_NEWER)
            .key(self.key(id))
            .arg(doc.version)
            .arg(raw)
            .arg(self.ttl.as_secs().max(1))
            .invoke_async(conn)
            .await?;
        Ok(set == 1)
    }
}
