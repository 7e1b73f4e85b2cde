//! `GET /api/v1/users` refuses what it does not understand, naming the parameter.

use crate::helpers::{NewUser, refused_fields, spawn_app};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn invalid_list_parameters_are_refused_naming_the_parameter() {
    let app = spawn_app().await;
    app.seed(NewUser::named("one")).await;
    app.seed(NewUser::named("two")).await;
    let admin = app.admin_token().await;
    let (_, first) = app
        .get_json("/api/v1/users?limit=1&sort=name", Some(&admin))
        .await;
    let name_cursor = first["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let long_q = "x".repeat(101);

    let cases = [
        ("perPage=1000".to_owned(), "perPage"),
        ("perPage=0".to_owned(), "perPage"),
        ("page=0".to_owned(), "page"),
        ("page=abc".to_owned(), "page"),
        ("page=-1".to_owned(), "page"),
        ("limit=0".to_owned(), "limit"),
        ("limit=101".to_owned(), "limit"),
        ("sort=password".to_owned(), "sort"),
        ("order=up".to_owned(), "order"),
        ("role=root".to_owned(), "role"),
        ("unknown=1".to_owned(), "unknown"),
        (format!("q={long_q}"), "q"),
        ("cursor=not-a-cursor".to_owned(), "cursor"),
        (format!("cursor={name_cursor}&page=2"), "cursor"),
        ("limit=5&perPage=5".to_owned(), "limit"),
        (format!("cursor={name_cursor}"), "cursor"),
        (format!("cursor={name_cursor}&sort=name&order=desc"), "cursor"),
        (format!("cursor={name_cursor}&sort=name&q=one"), "cursor"),
        ("q=a%00b".to_owned(), "q"),
        (format!("cursor={}&sort=name", nul_cursor()), "cursor"),
    ];
    for (query, field) in cases {
        let (status, body) = app
            .get_json(&format!("/api/v1/users?{query}"), Some(&admin))
            .await;
        assert_eq!(refused_fields(status, &body), vec![field], "{query}");
    }
    let (status, body) = app
        .get_json(
            &format!("/api/v1/users?cursor={name_cursor}&sort=name&limit=1"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the cursor works with its own parameters: {body}"
    );
}

/// A hand-made cursor whose sort key holds U+0000 (Postgres text cannot store it).
fn nul_cursor() -> String {
    use base64::Engine;
    let document = r#"{"v":1,"scope":{"sort":"name","order":"asc","role":null,"q":null},"after":{"key":{"s":"a\u0000b"},"id":"01a20178-7129-72bf-8199-f728910f4235"}}"#;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(document)
}
