//! The event catalogue for subscribers: an AsyncAPI 3.0 document of the events stream,
//! served at `/asyncapi.json`, with a readable page at `/asyncapi`.
//!
//! It is built from the same two sources the schema checks use: the event types each
//! aggregate declares ([`domain::event::catalogue`]) and their JSON Schemas
//! (`schemas/events/`, embedded at build time). One channel per event type (its subject),
//! one message per type and schema version: the envelope with its `data` in that type's
//! schema, and the `Nats-Msg-Id` header. The copy committed as `schemas/asyncapi.json` is
//! checked against this code by a test, so the published catalogue cannot drift.

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use runtime::StreamSettings;
use serde_json::{Map, Value, json};

include!(concat!(env!("OUT_DIR"), "/event_schemas.rs"));

/// The JSON Schema file of `name` (e.g. `user.renamed.v1.json`), without its `$schema` and
/// `$id` (the document's components name them instead).
fn schema(name: &str) -> Value {
    let raw = EVENT_SCHEMAS
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, raw)| *raw)
        .unwrap_or_else(|| panic!("schemas/events/{name} is missing (the schema tests say so too)"));
    let mut schema: Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("$id");
    }
    schema
}

/// A component or channel id for `text` (AsyncAPI ids allow letters, digits, `_` and `-`).
fn id(text: &str) -> String {
    text.replace('.', "_")
}

/// The AsyncAPI document of `stream`, whose NATS server is `nats_url` (the first of a
/// comma-separated list; credentials are left out).
pub fn document(stream: &StreamSettings, nats_url: &str) -> Value {
    let first = nats_url.split(',').next().unwrap_or_default().trim();
    let host = first
        .split_once("://")
        .map_or(first, |(_, rest)| rest)
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    schemas.insert("envelope_v1".to_owned(), schema("envelope.v1.json"));
    for (stream_type, event_type, version) in domain::event::catalogue() {
        let channel = id(event_type);
        let message = format!("{}_v{version}", id(event_type));
        let data = schema(&format!("{event_type}.v{version}.json"));
        let summary = data["description"].clone();
        schemas.insert(message.clone(), data);
        messages.insert(
            message.clone(),
            json!({
                "name": event_type,
                "title": format!("{event_type} v{version}"),
                "summary": summary,
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "required": ["Nats-Msg-Id"],
                    "properties": {
                        "Nats-Msg-Id": {
                            "type": "string",
                            "format": "uuid",
                            "description": "The event's id (the envelope's `id`): JetStream drops a second publish of it within the stream's duplicate window; handle by it idempotently."
                        }
                    }
                },
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/envelope_v1"},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": event_type},
                                "streamType": {"const": stream_type},
                                "schemaVersion": {"const": version},
                                "data": {"$ref": format!("#/components/schemas/{message}")}
                            }
                        }
                    ]
                }
            }),
        );
        channels.insert(
            channel.clone(),
            json!({
                "address": stream.subject(event_type),
                "title": event_type,
                "description": format!(
                    "`{event_type}` events of `{stream_type}` streams, in stream `{}` (every {stream_type} event: `{}`).",
                    stream.name,
                    stream.stream_type_filter(stream_type)
                ),
                "messages": {
                    message.clone(): {"$ref": format!("#/components/messages/{message}")}
                }
            }),
        );
        operations.insert(
            format!("receive_{channel}"),
            json!({
                "action": "receive",
                "title": format!("Receive {event_type}"),
                "summary": "Consume with a durable pull consumer of your own, acknowledging explicitly.",
                "channel": {"$ref": format!("#/channels/{channel}")},
                "messages": [{"$ref": format!("#/channels/{channel}/messages/{message}")}]
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "cqrs-backend events",
            "version": "1",
            "description": format!(
                "Every event the backend commits, published once to the JetStream stream `{}` on \
                 subject `{}.<type>` after its transaction committed (at least once: a repeat \
                 carries the same `Nats-Msg-Id`). Events of one stream arrive in `streamVersion` \
                 order per consumer; a new payload shape is a new `schemaVersion`, never an edit.",
                stream.name, stream.subject_prefix
            )
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": host,
                "protocol": "nats",
                "description": format!("NATS with JetStream; stream `{}`.", stream.name)
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas
        }
    })
}

/// A readable page of the document: each subject with its message's fields.
pub fn page(document: &Value) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Events</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         code{background:#f3f3f3;padding:0 .2rem}table{border-collapse:collapse;width:100%;margin-bottom:2rem}\
         td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=\"/asyncapi.json\">/asyncapi.json</a> (AsyncAPI 3.0).</p>",
        escape(document["info"]["title"].as_str().unwrap_or_default()),
        escape(document["info"]["description"].as_str().unwrap_or_default()),
    ));
    let schemas = &document["components"]["schemas"];
    for channel in document["channels"]
        .as_object()
        .into_iter()
        .flat_map(|c| c.values())
    {
        let Some((message, _)) = channel["messages"].as_object().and_then(|m| m.iter().next()) else {
            continue;
        };
        let schema = &schemas[message];
        html.push_str(&format!(
            "<h2 id=\"{}\">{}</h2><p>Subject <code>{}</code>, schema version {}. {}</p>\
             <table><tr><th>data field</th><th>type</th><th>required</th><th>description</th></tr>",
            escape(message),
            escape(channel["title"].as_str().unwrap_or_default()),
            escape(channel["address"].as_str().unwrap_or_default()),
            escape(message.rsplit("_v").next().unwrap_or_default()),
            escape(schema["description"].as_str().unwrap_or_default()),
        ));
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(field),
                escape(
                    &property
                        .get("type")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "object".to_owned())
                ),
                if required.contains(&field.as_str()) {
                    "yes"
                } else {
                    "no"
                },
                escape(property["description"].as_str().unwrap_or_default()),
            ));
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>");
    html
}

/// `GET /asyncapi.json` and `GET /asyncapi` (public: it describes the events, not data).
pub fn routes(document: Value) -> Router {
    let page = page(&document);
    Router::new()
        .route(
            "/asyncapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json(document).into_response() }
            }),
        )
        .route(
            "/asyncapi",
            get(move || async move { Html(page).into_response() }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn defaults() -> StreamSettings {
        StreamSettings {
            name: "EVENTS".to_owned(),
            subject_prefix: "events".to_owned(),
            duplicate_window: Duration::from_secs(120),
        }
    }

    /// Follows a local `$ref` (`#/a/b/c`).
    fn resolve<'a>(document: &'a Value, reference: &str) -> &'a Value {
        let path = reference.strip_prefix("#/").expect("a local reference");
        path.split('/').fold(document, |node, key| &node[key])
    }

    fn references<'a>(node: &'a Value, found: &mut Vec<&'a str>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    found.push(reference);
                }
                map.values().for_each(|value| references(value, found));
            }
            Value::Array(items) => items.iter().for_each(|value| references(value, found)),
            _ => {}
        }
    }

    #[test]
    fn the_committed_catalogue_is_the_one_the_code_makes() {
        let generated = document(&defaults(), "nats://127.0.0.1:4222");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/asyncapi.json");
        let pretty = serde_json::to_string_pretty(&generated).expect("JSON") + "\n";
        if std::env::var_os("UPDATE_ASYNCAPI").is_some() {
            std::fs::write(&path, &pretty).expect("write schemas/asyncapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == pretty,
            "schemas/asyncapi.json is not what the code publishes: run `./dev asyncapi` and commit it"
        );
    }

    #[test]
    fn every_event_type_has_its_channel_and_message_and_every_reference_resolves() {
        let document = document(&defaults(), "nats://user:secret@nats.internal:4222,nats://b:4222");
        assert_eq!(document["asyncapi"], "3.0.0");
        assert_eq!(
            document["servers"]["nats"]["host"], "nats.internal:4222",
            "no credentials"
        );
        for (stream_type, event_type, version) in domain::event::catalogue() {
            let channel = &document["channels"][id(event_type)];
            assert_eq!(
                channel["address"],
                format!("events.{event_type}"),
                "{stream_type}"
            );
            let message = &document["components"]["messages"][format!("{}_v{version}", id(event_type))];
            assert_eq!(message["name"], event_type);
            assert!(message["headers"]["properties"]["Nats-Msg-Id"].is_object());
        }
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(found.len() > 3 * domain::event::catalogue().len());
        for reference in found {
            assert!(!resolve(&document, reference).is_null(), "{reference} resolves");
        }
        for key in document["channels"]
            .as_object()
            .into_iter()
            .chain(document["operations"].as_object())
            .flat_map(|map| map.keys())
        {
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{key} is a valid AsyncAPI id"
            );
        }
    }

    #[test]
    fn the_page_lists_every_subject_and_escapes_what_it_shows() {
        let document = document(&defaults(), "nats://127.0.0.1:4222");
        let html = page(&document);
        for (_, event_type, _) in domain::event::catalogue() {
            assert!(
                html.contains(&format!("<code>events.{event_type}</code>")),
                "{event_type}"
            );
        }
        assert!(html.contains("<code>priceCents</code>"));
        assert!(!html.contains("<script"));
    }
}
