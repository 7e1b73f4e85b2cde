//! `GET /api/v1/users`: admin only, page and cursor modes, filters and sorts.

use crate::helpers::{NewUser, TestApp, assert_error, spawn_app};
use chrono::{Duration, Utc};
use domain::user::Role;
use readmodels::users::UserView;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use testkit::eventually;
use uuid::Uuid;

/// Seeds users named `names`, registered one minute apart (in that order), in the past.
async fn seed_in_order(app: &TestApp, names: &[&str]) -> Vec<UserView> {
    let start = Utc::now() - Duration::hours(1);
    let mut users = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let created_at = start + Duration::minutes(i as i64);
        users.push(
            app.seed(NewUser {
                created_at: Some(created_at),
                ..NewUser::named(name)
            })
            .await,
        );
    }
    users
}

fn ids(body: &Value) -> Vec<Uuid> {
    body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|user| user["id"].as_str().and_then(|id| id.parse().ok()).expect("an id"))
        .collect()
}

/// Follows `nextCursor` from `first` to the end, returning the ids in order.
async fn walk(app: &TestApp, first: &str) -> Vec<Uuid> {
    let token = app.admin_token().await;
    let mut seen = Vec::new();
    let mut path = first.to_owned();
    for _ in 0..50 {
        let (status, body) = app.get_json(&path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(ids(&body));
        let pagination = &body["meta"]["pagination"];
        match pagination["nextCursor"].as_str() {
            Some(cursor) => {
                assert_eq!(pagination["hasMore"], true);
                path = format!("{first}&cursor={cursor}");
            }
            None => {
                assert_eq!(pagination["hasMore"], false);
                return seen;
            }
        }
    }
    panic!("the cursor never reached the end");
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_users_is_for_admins_only() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Plain User")).await;

    let (status, body) = app
        .get_json("/api/v1/users", Some(&app.token(user.id, Role::User)))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, body) = app.get_json("/api/v1/users", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn page_mode_reports_totals_and_serves_the_last_page() {
    let app = spawn_app().await;
    let users = seed_in_order(&app, &["u1", "u2", "gone1", "u3", "u4", "gone2", "u5"]).await;
    for gone in [&users[2], &users[5]] {
        app.mark_deleted(gone.id).await;
    }
    let live: Vec<Uuid> = [0, 1, 3, 4, 6].iter().map(|&i| users[i].id).collect();
    let admin = app.admin_token().await;

    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = app
            .get_json(&format!("/api/v1/users?page={page}&perPage=2"), Some(&admin))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["meta"]["pagination"],
            json!({"page": page, "perPage": 2, "total": 5, "totalPages": 3, "hasNext": page < 3, "hasPrev": page > 1})
        );
        seen.extend(ids(&body));
    }
    assert_eq!(seen, live);
    assert_eq!(
        app.get_json("/api/v1/users?page=1&perPage=2", Some(&admin))
            .await
            .1["data"][0],
        json!(users[0])
    );

    let (status, body) = app.get_json("/api/v1/users?page=4&perPage=2", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["meta"]["pagination"]["total"], 5);

    let (_, body) = app.get_json("/api/v1/users", Some(&admin)).await;
    assert_eq!(
        body["meta"]["pagination"],
        json!({"page": 1, "perPage": 20, "total": 5, "totalPages": 1, "hasNext": false, "hasPrev": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_mode_visits_every_user_exactly_once_while_users_are_added() {
    let app = spawn_app().await;
    let names: Vec<String> = (0..10).map(|i| format!("before {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let initial = seed_in_order(&app, &names).await;
    app.mark_deleted(initial[4].id).await;
    let admin = app.admin_token().await;

    let mut seen = Vec::new();
    let mut added_later = Vec::new();
    let mut path = "/api/v1/users?limit=3".to_owned();
    for page in 0.. {
        assert!(page < 50, "the cursor never reached the end");
        let (status, body) = app.get_json(&path, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(ids(&body));
        let Some(cursor) = body["meta"]["pagination"]["nextCursor"].as_str() else {
            assert_eq!(body["meta"]["pagination"]["hasMore"], false);
            break;
        };
        path = format!("/api/v1/users?limit=3&cursor={cursor}");
        // Between pages: one user sorts before everything served, one after.
        if page < 3 {
            let early = Utc::now() - Duration::days(1);
            app.seed(NewUser {
                created_at: Some(early),
                ..NewUser::named("early bird")
            })
            .await;
            added_later.push(app.seed(NewUser::named("late comer")).await.id);
        }
    }

    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no user is served twice");
    let mut expected: Vec<Uuid> = initial
        .iter()
        .map(|u| u.id)
        .filter(|&id| id != initial[4].id)
        .collect();
    expected.extend(added_later);
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn sorts_by_name_and_email_descending_in_both_modes() {
    let app = spawn_app().await;
    // Name order and email order differ on purpose.
    let seeded = [
        ("anna", "zed@example.com"),
        ("bert", "yan@example.com"),
        ("carl", "amy@example.com"),
        ("dora", "bea@example.com"),
        ("emil", "cat@example.com"),
    ];
    let mut users = Vec::new();
    for (name, email) in seeded {
        users.push(
            app.seed(NewUser {
                email: Some(email),
                ..NewUser::named(name)
            })
            .await,
        );
    }
    let mut by_name = users.clone();
    by_name.sort_by(|a, b| b.name.cmp(&a.name));
    let mut by_email = users.clone();
    by_email.sort_by(|a, b| b.email.cmp(&a.email));
    let by_name: Vec<Uuid> = by_name.iter().map(|u| u.id).collect();
    let by_email: Vec<Uuid> = by_email.iter().map(|u| u.id).collect();

    assert_eq!(
        walk(&app, "/api/v1/users?limit=2&sort=name&order=desc").await,
        by_name
    );
    assert_eq!(
        walk(&app, "/api/v1/users?limit=2&sort=email&order=desc").await,
        by_email
    );
    let (_, body) = app
        .get_json(
            "/api/v1/users?perPage=5&sort=email&order=desc",
            Some(&app.admin_token().await),
        )
        .await;
    assert_eq!(ids(&body), by_email);
    let mut ascending = by_name.clone();
    ascending.reverse();
    assert_eq!(
        walk(&app, "/api/v1/users?limit=2&sort=name&order=asc").await,
        ascending
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn role_and_q_filter_the_list_and_wildcards_match_literally() {
    let app = spawn_app().await;
    let alice = app
        .seed(NewUser {
            role: Role::Admin,
            ..NewUser::named("Alice Admin")
        })
        .await;
    let bob = app
        .seed(NewUser {
            email: Some("bob@corp.test"),
            ..NewUser::named("Bob")
        })
        .await;
    let percent = app
        .seed(NewUser {
            email: Some("p@example.com"),
            ..NewUser::named("100% Real")
        })
        .await;
    let under = app
        .seed(NewUser {
            email: Some("under_score@example.com"),
            ..NewUser::named("Under")
        })
        .await;
    let gone = app
        .seed(NewUser {
            role: Role::Admin,
            ..NewUser::named("Alice Gone")
        })
        .await;
    app.mark_deleted(gone.id).await;
    let admin = app.admin_token().await;

    let cases = [
        ("role=admin", vec![alice.id]),
        ("role=user", vec![bob.id, percent.id, under.id]),
        ("q=aLiCe", vec![alice.id]),
        ("q=CORP", vec![bob.id]),
        ("q=%25", vec![percent.id]),
        ("q=_", vec![under.id]),
        ("q=example&role=user", vec![percent.id, under.id]),
        ("q=nobody", vec![]),
    ];
    for (query, expected) in cases {
        let (status, body) = app
            .get_json(&format!("/api/v1/users?{query}"), Some(&admin))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
        assert_eq!(body["meta"]["pagination"]["total"], expected.len(), "{query}");
        assert_eq!(
            walk(&app, &format!("/api/v1/users?limit=1&{query}")).await,
            expected,
            "{query}"
        );
    }
}

/// Pages are remembered until one of their tables changes: a user added or renamed
/// after a page was served shows in the next answers as soon as Postgres has told the
/// change (milliseconds; far under the minute a page may otherwise be kept), in both
/// modes.
#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_page_gives_way_to_the_next_change_of_its_table() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    seed_in_order(&app, &["Ada", "Bo"]).await;
    let told = std::time::Duration::from_secs(2);
    for path in ["/api/v1/users?perPage=50", "/api/v1/users?limit=50"] {
        for round in 0..5 {
            let (_, first) = app.get_json(path, Some(&token)).await;
            let (_, again) = app.get_json(path, Some(&token)).await;
            assert_eq!(ids(&first), ids(&again), "{path}: nothing changed");
            let name = format!("Added {round}");
            let added = app.seed(NewUser::named(&name)).await;
            eventually(told, "the added user to be listed", || async {
                let (status, body) = app.get_json(path, Some(&token)).await;
                let now = ids(&body);
                (status == StatusCode::OK && now.len() == ids(&first).len() + 1 && now.contains(&added.id))
                    .then_some(())
            })
            .await;
        }
    }
    let (_, body) = app.get_json("/api/v1/users?perPage=50", Some(&token)).await;
    assert_eq!(
        body["meta"]["pagination"]["total"],
        json!(ids(&body).len()),
        "{body}"
    );
    let renamed = ids(&body)[0];
    sqlx::query("UPDATE users_view SET name = 'Renamed', version = version + 1 WHERE id = $1")
        .bind(renamed)
        .execute(&app.db.pool)
        .await
        .expect("rename");
    eventually(told, "the rename to be listed", || async {
        let (_, body) = app.get_json("/api/v1/users?perPage=50", Some(&token)).await;
        let listed = body["data"]
            .as_array()?
            .iter()
            .any(|user| user["id"] == json!(renamed) && user["name"] == "Renamed");
        listed.then_some(())
    })
    .await;
}
