//! Random but valid histories of many users, appended through the event store, with the
//! read model each one must end up as (computed here independently of the projector).

use crate::support::{TestEnv, registered, renamed, role_changed};
use domain::user::{Role, UserEvent};
use futures::StreamExt;
use projector::users::UserRow;
use rand::Rng;
use uuid::Uuid;

/// What a user's row must look like at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub version: i64,
    pub deleted: bool,
}

impl Expected {
    /// Whether a projected row matches.
    pub fn matches(&self, row: &UserRow) -> bool {
        row.id == self.id
            && row.email == self.email
            && row.name == self.name
            && row.role == self.role
            && row.version == self.version
            && row.deleted_at.is_some() == self.deleted
    }
}

/// One user's history: the events, appended one transaction each.
pub struct Script {
    pub id: Uuid,
    pub events: Vec<UserEvent>,
    pub expected: Expected,
}

/// A random history: a registration, up to `max_changes` changes, sometimes a deletion.
pub fn random_script(index: usize, max_changes: usize) -> Script {
    let mut rng = rand::rng();
    let id = Uuid::now_v7();
    let email = format!("user{index}-{}@example.com", testkit::unique_suffix());
    let mut name = format!("User {index}");
    let mut role = Role::User;
    let mut events = vec![registered(&email, &name, role)];
    for change in 0..rng.random_range(0..=max_changes) {
        match rng.random_range(0..3) {
            0 => {
                name = format!("User {index} v{change}");
                events.push(renamed(&name));
            }
            1 => {
                let next = if role == Role::User {
                    Role::Admin
                } else {
                    Role::User
                };
                events.push(role_changed(next, role));
                role = next;
            }
            _ => events.push(UserEvent::PasswordChanged {}),
        }
    }
    let deleted = rng.random_bool(0.25);
    if deleted {
        events.push(UserEvent::Deleted {});
    }
    let expected = Expected {
        id,
        email: (!deleted).then_some(email),
        name: (!deleted).then_some(name),
        role: role.as_str().to_owned(),
        version: events.len() as i64,
        deleted,
    };
    Script { id, events, expected }
}

/// Appends every script, users interleaved, each event in its own transaction.
pub async fn append_all(env: &TestEnv, scripts: &[Script]) -> usize {
    futures::stream::iter(scripts)
        .map(|script| async move {
            for (version, event) in script.events.iter().enumerate() {
                env.append(script.id, version as i64, std::slice::from_ref(event))
                    .await;
            }
            script.events.len()
        })
        .buffer_unordered(8)
        .fold(0, |total, n| async move { total + n })
        .await
}

/// Whether every user's row matches its script (and no other row exists).
pub fn all_match(scripts: &[Script], rows: &[UserRow]) -> bool {
    rows.len() == scripts.len()
        && scripts
            .iter()
            .all(|s| rows.iter().any(|row| s.expected.matches(row)))
}
