//! A deserializer over a parsed JSON document that reads a struct only from an object.
//!
//! serde's derives let a struct deserialize from a sequence as well (its fields in order),
//! and serde_json's deserializers allow it, so `["a@example.com", "Ada", "pw"]` would pass
//! for a registration. The documented bodies are objects, so this deserializer refuses any
//! other shape for a struct, at every nesting level, and otherwise reads like
//! `serde_json::Value` does (enums, options, numbers with range checks, borrowed strings).
//! serde_json offers no switch for this, hence a deserializer of our own.
//!
//! Limits: what serde buffers before deserializing (untagged or internally tagged enums,
//! `#[serde(flatten)]`) is read by serde's own buffer, which still accepts a sequence for
//! a struct nested inside it.

mod document;

pub(crate) use document::Document;

use serde::de::value::{BorrowedStrDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, EnumAccess, Error as _, IntoDeserializer, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Value};

/// A JSON value read by serde, structs from objects only.
#[derive(Clone, Copy)]
pub(crate) struct Strict<'a>(pub(crate) &'a Value);

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> Strict<'de> {
    fn visit_array<V: Visitor<'de>>(items: &'de [Value], visitor: V) -> Result<V::Value, Error> {
        let mut seq = SeqDeserializer::new(items.iter().map(Strict));
        let value = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(value)
    }

    fn visit_object<V: Visitor<'de>>(
        object: &'de serde_json::Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let entries = object
            .iter()
            .map(|(key, value)| (BorrowedStrDeserializer::new(key), Strict(value)));
        let mut map = MapDeserializer::new(entries);
        let value = visitor.visit_map(&mut map)?;
        map.end()?;
        Ok(value)
    }
}

impl<'de> IntoDeserializer<'de, Error> for Strict<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => Self::visit_array(items, visitor),
            Value::Object(object) => Self::visit_object(object, visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(object) => Self::visit_object(object, visitor),
            other => Err(Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(tag) => visitor.visit_enum(Variant { tag, value: None }),
            Value::Object(object) if object.len() == 1 => {
                let (tag, value) = object.iter().next().ok_or_else(|| Error::custom("empty map"))?;
                visitor.visit_enum(Variant {
                    tag,
                    value: Some(value),
                })
            }
            Value::Object(_) => Err(Error::invalid_value(Unexpected::Map, &"a map with a single key")),
            other => Err(Error::invalid_type(unexpected(other), &"a string or a map")),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// An externally tagged enum: `"Tag"` or `{"Tag": value}`.
struct Variant<'a> {
    tag: &'a str,
    value: Option<&'a Value>,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let tag = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.tag))?;
        Ok((tag, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(Error::invalid_type(unexpected(other), &"unit variant")),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(Strict(value)),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(Value::Array(items)) => Strict::visit_array(items, visitor),
            Some(other) => Err(Error::invalid_type(unexpected(other), &"tuple variant")),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(Value::Object(object)) => Strict::visit_object(object, visitor),
            Some(other) => Err(Error::invalid_type(unexpected(other), &"struct variant")),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}

#[cfg(test)]
mod tests;
