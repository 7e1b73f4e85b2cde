//! Every event type has a JSON Schema in `schemas/events/`, and what the code writes
//! validates against it, envelope included. A change of shape that breaks a schema
//! fails here: add a new schema version instead.

use domain::DomainEvent;
use domain::money::{Cents, Currency};
use domain::order::{OrderCommand, OrderEvent, OrderLine, OrderState};
use domain::product::{Description, ProductEvent, ProductName, Sku};
use domain::review::{Comment, Rating, ReviewEvent};
use domain::user::{Email, Role, UserEvent, UserName};
use serde_json::{Value, json};
use std::path::PathBuf;

fn schema(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/events")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn validate(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("invalid schema: {e}"));
    validator.iter_errors(instance).map(|e| e.to_string()).collect()
}

fn samples() -> Vec<UserEvent> {
    vec![
        UserEvent::Registered {
            email: Email::parse("ada@example.com").expect("valid"),
            name: UserName::parse("Ada").expect("valid"),
            role: Role::User,
        },
        UserEvent::Renamed {
            name: UserName::parse("Ada L.").expect("valid"),
        },
        UserEvent::RoleChanged {
            role: Role::Admin,
            previous_role: Role::User,
        },
        UserEvent::EmailChanged {
            email: Email::parse("ada@lovelace.org").expect("valid"),
            previous_email: Email::parse("ada@example.com").expect("valid"),
        },
        UserEvent::PasswordChanged {},
        UserEvent::PasswordResetRequested {},
        UserEvent::Deleted {},
    ]
}

#[test]
fn every_event_type_has_a_schema_file() {
    let types = UserEvent::TYPES
        .iter()
        .chain(ProductEvent::TYPES.iter())
        .chain(OrderEvent::TYPES.iter())
        .chain(ReviewEvent::TYPES.iter());
    for (event_type, version) in types {
        schema(&format!("{event_type}.v{version}.json"));
    }
}

/// Every declared event type with its version and fields, all aggregates.
fn declarations() -> Vec<(&'static str, i32, &'static [&'static str])> {
    type Types = &'static [(&'static str, i32)];
    type Fields = &'static [(&'static str, &'static [&'static str])];
    let streams: [(Types, Fields); 4] = [
        (UserEvent::TYPES, UserEvent::FIELDS),
        (ProductEvent::TYPES, ProductEvent::FIELDS),
        (OrderEvent::TYPES, OrderEvent::FIELDS),
        (ReviewEvent::TYPES, ReviewEvent::FIELDS),
    ];
    let mut all = Vec::new();
    for (types, fields) in streams {
        assert_eq!(types.len(), fields.len());
        for ((event_type, version), (same_type, names)) in types.iter().zip(fields) {
            assert_eq!(event_type, same_type);
            all.push((*event_type, *version, *names));
        }
    }
    all
}

fn camel_case(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn each_schema_has_exactly_the_declared_fields_and_refuses_others() {
    for (event_type, version, fields) in declarations() {
        let schema = schema(&format!("{event_type}.v{version}.json"));
        let name = format!("{event_type}.v{version}");
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        let mut declared: Vec<String> = fields.iter().map(|f| camel_case(f)).collect();
        declared.sort();
        let mut documented: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        documented.sort();
        assert_eq!(
            documented, declared,
            "{name}: schema properties against the declaration"
        );
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap_or_default().to_owned();
            assert!(
                declared.contains(&required),
                "{name} requires undeclared {required}"
            );
        }
    }
}

#[test]
fn no_schema_file_lacks_a_declaration() {
    let declared: Vec<String> = declarations()
        .iter()
        .map(|(t, v, _)| format!("{t}.v{v}.json"))
        .collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/events");
    for entry in std::fs::read_dir(&dir).expect("schemas/events") {
        let file = entry.expect("entry").file_name().to_string_lossy().into_owned();
        if file == "envelope.v1.json" {
            continue;
        }
        assert!(declared.contains(&file), "{file} has no event declaration");
    }
}

#[test]
fn product_and_order_events_validate_against_their_schemas() {
    let order_id = uuid::Uuid::now_v7();
    let created = ProductEvent::Created {
        sku: Sku::parse("mug-1").expect("sku"),
        name: ProductName::parse("Mug").expect("name"),
        description: Description::parse("").expect("description"),
        price_cents: Cents::new(1250).expect("price"),
        currency: Currency::parse("EUR").expect("currency"),
        stock: 3,
    };
    let placed = domain::order::decide(
        &OrderCommand::Place {
            user_id: uuid::Uuid::now_v7(),
            lines: vec![OrderLine {
                product_id: uuid::Uuid::now_v7(),
                sku: "MUG-1".into(),
                name: "Mug".into(),
                quantity: 2,
                unit_price_cents: 1250,
                line_total_cents: 0,
            }],
            currency: Currency::parse("EUR").expect("currency"),
        },
        &OrderState::New,
    )
    .expect("placed");
    let events: Vec<(&str, Value)> = vec![
        (created.event_type(), created.to_data()),
        (
            "product.updated",
            ProductEvent::Updated {
                name: None,
                description: None,
                price_cents: Some(Cents::new(1).expect("p")),
            }
            .to_data(),
        ),
        (
            "product.restocked",
            ProductEvent::Restocked {
                quantity: 2,
                stock: 5,
            }
            .to_data(),
        ),
        ("product.retired", ProductEvent::Retired {}.to_data()),
        (
            "product.stock_reserved",
            ProductEvent::StockReserved {
                order_id,
                quantity: 2,
                stock: 3,
            }
            .to_data(),
        ),
        (
            "product.stock_released",
            ProductEvent::StockReleased {
                order_id,
                quantity: 2,
                stock: 5,
            }
            .to_data(),
        ),
        ("order.placed", placed[0].to_data()),
        ("order.cancelled", OrderEvent::Cancelled {}.to_data()),
    ];
    let product_id = uuid::Uuid::now_v7();
    let reviews = [
        ReviewEvent::Written {
            product_id,
            author_id: uuid::Uuid::now_v7(),
            rating: Rating::parse(5).expect("rating"),
            comment: Comment::parse("Sturdy and warm.").expect("comment"),
        },
        ReviewEvent::Edited {
            product_id,
            rating: Rating::parse(4).expect("rating"),
            comment: None,
        },
        ReviewEvent::Deleted { product_id },
    ];
    let events = events
        .into_iter()
        .chain(reviews.iter().map(|e| (e.event_type(), e.to_data())));
    for (event_type, data) in events {
        let schema = schema(&format!("{event_type}.v1.json"));
        assert_eq!(
            validate(&schema, &data),
            Vec::<String>::new(),
            "{event_type}: {data}"
        );
    }
}

#[test]
fn every_event_written_validates_against_its_schema_and_the_envelope() {
    let envelope_schema = schema("envelope.v1.json");
    for (position, event) in samples().into_iter().enumerate() {
        let data = event.to_data();
        let data_schema = schema(&format!(
            "{}.v{}.json",
            event.event_type(),
            event.schema_version()
        ));
        assert_eq!(
            validate(&data_schema, &data),
            Vec::<String>::new(),
            "{}",
            event.event_type()
        );
        let envelope = json!({
            "id": "01a20145-1959-719c-a5d9-ad74f5c4db19", "type": event.event_type(),
            "schemaVersion": event.schema_version(), "streamType": UserEvent::STREAM_TYPE,
            "streamId": "01a20145-1959-719c-a5d9-ad74f5c4db19", "streamVersion": position + 1,
            "position": position + 1, "occurredAt": "2026-01-01T00:00:00Z",
            "correlationId": "req-1", "causationId": "req-1", "actorId": null, "data": data,
        });
        assert_eq!(validate(&envelope_schema, &envelope), Vec::<String>::new());
    }
}

#[test]
fn the_schemas_refuse_what_the_contract_forbids() {
    let registered = schema("user.registered.v1.json");
    assert!(
        !validate(
            &registered,
            &json!({"email": "a@b.io", "name": "A", "role": "user", "passwordHash": "x"})
        )
        .is_empty()
    );
    assert!(!validate(&registered, &json!({"email": "a@b.io", "role": "user"})).is_empty());
    assert!(
        !validate(
            &registered,
            &json!({"email": "a@b.io", "name": "A", "role": "root"})
        )
        .is_empty()
    );
}
