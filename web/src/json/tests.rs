//! Structs from objects only, everything else as serde_json reads it.

use crate::ApiError;
use crate::extract::parse_json;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Line {
    sku: String,
    quantity: u8,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Order {
    lines: Vec<Line>,
    tags: Vec<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Admin,
}

#[derive(Debug, Deserialize, PartialEq)]
enum Change {
    Rename { name: String },
    Price(u32),
    Pair(u8, u8),
    Clear,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Either {
    Number(u64),
    Text(String),
}

#[derive(Debug, Deserialize, PartialEq)]
struct Kinds {
    role: Role,
    changes: Vec<Change>,
    either: Vec<Either>,
    id: uuid::Uuid,
    limit: Option<u8>,
    sku: Sku,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Sku(String);

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> (StatusCode, String, String) {
    let error = result.expect_err("should be refused");
    let detail = error.details().first().cloned();
    (
        error.status(),
        detail.as_ref().map(|d| d.field.clone()).unwrap_or_default(),
        detail.map(|d| d.message).unwrap_or_default(),
    )
}

#[test]
fn an_array_for_the_top_level_object_is_refused_as_the_body() {
    let (status, field, message) = refused(parse_json::<Line>(br#"["sku-1", 2]"#));
    assert_eq!((status, field.as_str()), (StatusCode::BAD_REQUEST, "body"));
    assert!(message.contains("sequence"), "{message}");
}

#[test]
fn an_array_for_a_nested_object_is_refused_with_its_path() {
    let (status, field, _) = refused(parse_json::<Order>(
        br#"{"lines": [{"sku": "a", "quantity": 1}, ["b", 2]], "tags": []}"#,
    ));
    assert_eq!((status, field.as_str()), (StatusCode::BAD_REQUEST, "lines[1]"));
}

#[test]
fn arrays_still_fill_vec_fields_and_objects_fill_structs() {
    let order: Order =
        parse_json(br#"{"lines": [{"sku": "a", "quantity": 255}], "tags": ["x", "y"], "note": null}"#)
            .expect("valid order");
    assert_eq!(order.tags, ["x", "y"]);
    assert_eq!(
        order.lines,
        [Line {
            sku: "a".into(),
            quantity: 255
        }]
    );
    assert_eq!(order.note, None);
}

#[test]
fn enums_options_newtypes_and_uuids_read_as_before() {
    let kinds: Kinds = parse_json(
        br#"{"role": "admin", "changes": [{"Rename": {"name": "n"}}, {"Price": 5},
             {"Pair": [1, 2]}, "Clear"], "either": [3, "t"],
             "id": "0190a6a4-0000-7000-8000-000000000000", "limit": 7, "sku": "s"}"#,
    )
    .expect("valid kinds");
    assert_eq!(kinds.role, Role::Admin);
    assert_eq!(
        kinds.changes,
        [
            Change::Rename { name: "n".into() },
            Change::Price(5),
            Change::Pair(1, 2),
            Change::Clear
        ]
    );
    assert_eq!(kinds.either, [Either::Number(3), Either::Text("t".into())]);
    assert_eq!((kinds.limit, kinds.sku), (Some(7), Sku("s".into())));
    assert_ne!(Role::User, kinds.role);
}

#[test]
fn a_struct_variant_given_as_an_array_and_an_out_of_range_number_are_named() {
    let bad_variant = br#"{"role": "user", "changes": [{"Rename": ["n"]}], "either": [],
         "id": "0190a6a4-0000-7000-8000-000000000000", "limit": null, "sku": "s"}"#;
    assert_eq!(refused(parse_json::<Kinds>(bad_variant)).1, "changes[0].Rename");
    let (_, field, message) = refused(parse_json::<Line>(br#"{"sku": "a", "quantity": 256}"#));
    assert_eq!(field, "quantity");
    assert!(message.contains("u8"), "{message}");
}
