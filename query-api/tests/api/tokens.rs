//! Access tokens the query API must refuse with 401, whatever their shape.

use crate::helpers::{ISSUER, NewUser, TestApp, assert_error, spawn_app};
use auth::{AUDIENCE, Claims, SigningKey, TokenIssuer};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use domain::user::Role;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};
use uuid::Uuid;

fn claims(user_id: Uuid, role: Role) -> Claims {
    let now = Utc::now();
    Claims {
        sub: user_id,
        role,
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        iat: now.timestamp(),
        exp: (now + Duration::minutes(15)).timestamp(),
        jti: Uuid::now_v7(),
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The token with its payload swapped for `role: admin`, signature untouched.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64 payload");
    let mut payload: Value = serde_json::from_slice(&payload).expect("JSON payload");
    payload["role"] = json!("admin");
    format!("{}.{}.{}", parts[0], b64(&payload), parts[2])
}

/// Every way of forging a token for `user_id` the tests try.
fn forgeries(app: &TestApp, user_id: Uuid) -> Vec<(&'static str, String)> {
    let kid = app.key.kid().to_owned();
    let valid = app.token(user_id, Role::User);

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&json!(claims(user_id, Role::Admin)))
    );

    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(kid.clone());
    let hs256 = encode(
        &hs256,
        &claims(user_id, Role::Admin),
        &EncodingKey::from_secret(app.key.public_pem().as_bytes()),
    )
    .expect("HS256 token");

    let impostor = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let impostor_pem = impostor.to_pkcs8_pem(LineEnding::LF).expect("PEM");
    let mut same_kid = Header::new(Algorithm::EdDSA);
    same_kid.kid = Some(kid);
    let same_kid = encode(
        &same_kid,
        &claims(user_id, Role::User),
        &EncodingKey::from_ed_pem(impostor_pem.as_bytes()).expect("Ed25519 key"),
    )
    .expect("impostor token");

    let unpublished = TokenIssuer::new(SigningKey::generate(), ISSUER, Duration::minutes(15))
        .issue(user_id, Role::User)
        .expect("token")
        .token;
    let expired = app
        .issuer(Duration::seconds(-30))
        .issue(user_id, Role::User)
        .expect("token")
        .token;
    let wrong_issuer = TokenIssuer::new(app.key.clone(), "someone-else", Duration::minutes(15))
        .issue(user_id, Role::User)
        .expect("token")
        .token;

    vec![
        ("garbage", "not-a-jwt".to_owned()),
        ("three garbage parts", "a.b.c".to_owned()),
        ("tampered payload", tampered(&valid)),
        ("expired", expired),
        ("alg none", alg_none),
        ("HS256 with the public key as secret", hs256),
        ("another key with the same kid", same_kid),
        ("an unpublished key", unpublished),
        ("another issuer", wrong_issuer),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_is_accepted() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Token Holder")).await;
    let (status, body) = app
        .get_json("/api/v1/me", Some(&app.token(user.id, Role::User)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_or_a_wrong_scheme_is_unauthorized() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/me", None).await;
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    let status = response.status();
    assert_error(
        status,
        &response.json().await.expect("JSON"),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    );

    let basic = app
        .client
        .get(format!("{}/api/v1/me", app.address))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .expect("answered");
    let status = basic.status();
    assert_error(
        status,
        &basic.json().await.expect("JSON"),
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tampered_and_expired_tokens_are_unauthorized() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Target")).await;
    for (what, token) in forgeries(&app, user.id) {
        for path in ["/api/v1/me", "/api/v1/users"] {
            let (status, body) = app.get_json(path, Some(&token)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} on {path}: {body}");
            assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_remembered_as_verified_is_refused_once_it_expires() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Short Lived")).await;
    let token = app
        .issuer(Duration::seconds(2))
        .issue(user.id, Role::User)
        .expect("token")
        .token;
    for _ in 0..3 {
        let (status, body) = app.get_json("/api/v1/me", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The second of expiry passes (exp is whole seconds): the remembered token must go.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, body) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // And a tampered copy of a remembered token is checked in full, not matched by kinship.
    let fresh = app.token(user.id, Role::User);
    let (status, _) = app.get_json("/api/v1/me", Some(&fresh)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get_json("/api/v1/me", Some(&tampered(&fresh))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
