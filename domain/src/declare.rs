//! `events!`: an aggregate's event types declared once. One declaration gives the enum,
//! each type's public name and schema version, the list of types ([`TYPES`]), the stored
//! `data` (camelCase, unknown fields refused on read), the declared fields of each type
//! (`FIELDS`) and the [`DomainEvent`] impl with its upcasting hook. The JSON Schema files
//! in `schemas/events/` are checked against that one declaration by
//! `domain/tests/event_schemas.rs`: one file per declared type and version and none
//! other, exactly the declared properties, no others allowed, and every written payload
//! valid.
//!
//! Written as a declarative macro (not a derive crate) because it only arranges serde
//! attributes and a few matches; an extra proc-macro crate would buy nothing.
//!
//! [`TYPES`]: crate::event::DomainEvent
//! [`DomainEvent`]: crate::event::DomainEvent

/// Declares an aggregate's events. See `domain::review` for a use:
///
/// ```ignore
/// events! {
///     /// What happened to a review.
///     pub enum ReviewEvent in "review", upcast = upcast_review {
///         /// `review.written` v1.
///         Written = "review.written" version 1 { product_id: Uuid, rating: Rating },
///         Deleted = "review.deleted" version 1 {},
///     }
/// }
/// ```
///
/// `upcast` is a `fn(&str, i32, &Value) -> Result<Value, EventDecodeError>` that turns a
/// stored payload of an older schema version into the current one (use
/// [`crate::event::current_only`] while every type is at its first version).
#[macro_export]
macro_rules! events {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $stream:literal, upcast = $upcast:path {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $event_type:literal version $version:literal {
                    $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
                }
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(tag = "type", content = "data", rename_all_fields = "camelCase", deny_unknown_fields)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $event_type)]
                $variant {
                    $( $(#[$fmeta])* $field: $ty ),*
                },
            )+
        }

        impl $name {
            /// Every event type of the stream with its current schema version.
            pub const TYPES: &'static [(&'static str, i32)] = &[$(($event_type, $version)),+];

            /// Every event type with the fields of its current `data`, as declared (in
            /// Rust's snake_case; the payload spells them in camelCase). The schema test
            /// holds each JSON Schema to exactly these properties.
            pub const FIELDS: &'static [(&'static str, &'static [&'static str])] =
                &[$(($event_type, &[$(stringify!($field)),*])),+];
        }

        impl $crate::event::DomainEvent for $name {
            const STREAM_TYPE: &'static str = $stream;

            fn event_type(&self) -> &'static str {
                match self {
                    $( $name::$variant { .. } => $event_type, )+
                }
            }

            fn schema_version(&self) -> i32 {
                match self {
                    $( $name::$variant { .. } => $version, )+
                }
            }

            fn to_data(&self) -> ::serde_json::Value {
                match ::serde_json::to_value(self) {
                    Ok(::serde_json::Value::Object(mut tagged)) => {
                        tagged.remove("data").unwrap_or_else(|| ::serde_json::json!({}))
                    }
                    _ => ::serde_json::json!({}),
                }
            }

            fn from_stored(
                event_type: &str,
                schema_version: i32,
                data: &::serde_json::Value,
            ) -> Result<Self, $crate::event::EventDecodeError> {
                let Some(&(_, current)) = Self::TYPES.iter().find(|(t, _)| *t == event_type) else {
                    return Err($crate::event::EventDecodeError::UnknownType(event_type.to_owned()));
                };
                let data = if schema_version == current {
                    data.clone()
                } else {
                    $upcast(event_type, schema_version, data)?
                };
                let tagged = ::serde_json::json!({ "type": event_type, "data": data });
                ::serde_json::from_value(tagged).map_err(|e| $crate::event::EventDecodeError::Malformed {
                    event_type: event_type.to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    };
}
