//! A forgotten password, end to end: the request is answered alike for every email, the
//! workers email a single-use link to an account that exists, its token sets a new
//! password once, and every session of the account ends.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::Stack;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

/// The token in a reset email: the line that is 43 base64url characters (256 bits).
fn token_in(mail: &str) -> Option<String> {
    mail.lines()
        .map(str::trim)
        .find(|line| {
            line.len() == 43
                && line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_replaced_through_the_emailed_link_once() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", stack.command);
    let registered = http
        .post(url("/api/v1/auth/register"))
        .json(&json!({"email": "ada@example.com", "name": "Ada", "password": "engine1843x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let login = |password: &'static str| {
        http.post(url("/api/v1/auth/login"))
            .json(&json!({"email": "ada@example.com", "password": password}))
            .send()
    };
    let session: Value = login("engine1843x")
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let refresh_token = session["data"]["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // Known and unknown emails get the same answer.
    for email in ["ada@example.com", "nobody@example.com"] {
        let response = http
            .post(url("/api/v1/passwords/reset"))
            .json(&json!({"email": email}))
            .send()
            .await
            .expect("reset");
        assert_eq!(response.status(), 202, "{email}");
        assert_eq!(response.text().await.expect("body"), "", "{email}");
    }
    let mail = eventually(WAIT, "the reset email", || async {
        stack
            .smtp
            .messages()
            .into_iter()
            .find(|m| m.to == ["ada@example.com"] && m.data.contains("Subject: Reset your password"))
    })
    .await;
    assert!(
        !stack
            .smtp
            .messages()
            .iter()
            .any(|m| m.to == ["nobody@example.com"]),
        "no email to an address without an account"
    );
    let token = token_in(&mail.data).unwrap_or_else(|| panic!("a token in the email:\n{}", mail.data));

    // The token is in the email only: not in any event, nor in any log line.
    let events: Vec<Value> = sqlx::query_scalar("SELECT to_jsonb(e) FROM events e")
        .fetch_all(&stack.db.pool)
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["event_type"] == "user.password_reset_requested")
    );
    assert!(!events.iter().any(|e| e.to_string().contains(&token)));
    for service in ["command-api", "query-api", "projector", "workers"] {
        assert!(!stack.log(service).contains(&token), "{service} logged the token");
    }

    let confirm = |password: &'static str| {
        http.post(url("/api/v1/passwords/reset/confirm"))
            .json(&json!({"token": token, "newPassword": password}))
            .send()
    };
    // A password that breaks the rules leaves the token usable.
    assert_eq!(confirm("short").await.expect("confirm").status(), 400);
    assert_eq!(
        confirm("analytical-engine-2").await.expect("confirm").status(),
        204
    );
    assert_eq!(login("engine1843x").await.expect("login").status(), 401);
    assert_eq!(login("analytical-engine-2").await.expect("login").status(), 200);
    let refreshed = http
        .post(url("/api/v1/auth/refresh"))
        .json(&json!({"refreshToken": refresh_token}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 401, "every session ended with the reset");

    // Once only.
    let again = confirm("another-password-3").await.expect("confirm");
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.expect("JSON");
    assert_eq!(body["error"]["details"][0]["field"], "token");
    assert_eq!(login("analytical-engine-2").await.expect("login").status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_made_by_an_admin_is_opened_by_its_link_and_an_email_change_tells_the_old_address() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", stack.command);
    let login = |email: &'static str, password: &'static str| {
        http.post(url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let admin: Value = login(support::ADMIN_EMAIL, support::ADMIN_PASSWORD)
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let admin = admin["data"]["accessToken"].as_str().expect("token").to_owned();
    let created = http
        .post(url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "grace@example.com", "name": "Grace", "role": "user"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("JSON")["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mail = eventually(WAIT, "the set-password email", || async {
        stack
            .smtp
            .messages()
            .into_iter()
            .find(|m| m.to == ["grace@example.com"] && m.data.contains("Subject: Set the password"))
    })
    .await;
    let token = token_in(&mail.data).unwrap_or_else(|| panic!("a token in the email:\n{}", mail.data));
    let confirmed = http
        .post(url("/api/v1/passwords/reset/confirm"))
        .json(&json!({"token": token, "newPassword": "compiler-1952"}))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), 204);
    let session: Value = login("grace@example.com", "compiler-1952")
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let access = session["data"]["accessToken"].as_str().expect("token").to_owned();

    let changed = http
        .patch(url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&access)
        .json(&json!({"email": "grace@navy.mil", "currentPassword": "compiler-1952"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(changed.status(), 200);
    let notice = eventually(WAIT, "the notice to the old address", || async {
        stack.smtp.messages().into_iter().find(|m| {
            m.to == ["grace@example.com"]
                && m.data
                    .contains("Subject: The email address of your account changed")
        })
    })
    .await;
    assert!(notice.data.contains("g***@navy.mil"), "{}", notice.data);
    assert!(
        !notice.data.contains("grace@navy.mil"),
        "the new address is shown only in part"
    );
    // The read model follows.
    let me = eventually(WAIT, "the query API to show the new email", || async {
        let body: Value = http
            .get(format!("{}/api/v1/me", stack.query))
            .bearer_auth(&access)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["data"]["email"] == "grace@navy.mil").then_some(body)
    })
    .await;
    assert_eq!(me["data"]["name"], "Grace");
}
