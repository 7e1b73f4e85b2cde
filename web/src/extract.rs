//! Extractors whose every rejection is an [`ApiError`] in the documented envelope:
//! wrong content type → 415, body over the limit → 413, malformed JSON → 400, and a
//! field that is missing, unknown or of the wrong type → 400 naming the field.

use crate::json::{Document, Strict};
use crate::{ApiError, FieldError};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: none at all (or only whitespace) gives
/// `T::default()`; any other body is read as [`ApiJson`] reads it (415 without a JSON
/// content type, 413 when too large, 400 when malformed). For commands whose every field
/// is optional, such as a rebuild's reason.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// The whole body, within the body limit (413 beyond it).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is too large",
            )
        } else {
            ApiError::bad_request("the request body could not be read")
        }
    })
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Parses a JSON document into `T`, naming the field at fault. The document is parsed
/// first (so any syntax error, trailing garbage included, is "malformed JSON"), then read
/// into `T` by [`Strict`], which takes structs from objects only.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body must be a JSON document"));
    }
    let document = match serde_json::from_slice::<Document>(bytes) {
        Ok(Document(document)) => document,
        Err(error) if error.is_data() => {
            // The one data error a document can have: a key given twice.
            let message = strip_position(&error.to_string());
            let field = message.split('`').nth(1).unwrap_or("body").to_owned();
            return Err(ApiError::invalid_field(field, message));
        }
        Err(error) => return Err(ApiError::bad_request(format!("malformed JSON: {error}"))),
    };
    serde_path_to_error::deserialize(Strict(&document)).map_err(|error| {
        let message = error.inner().to_string();
        ApiError::validation(vec![FieldError::new(
            field_name(&error.path().to_string(), &message),
            message,
        )])
    })
}

/// serde_json appends " at line L column C"; the field name says more.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The path serde stopped at, or for a missing or unknown field the name in backticks.
fn field_name(path: &str, message: &str) -> String {
    let named = message.starts_with("missing field") || message.starts_with("unknown field");
    if named && let Some(name) = message.split('`').nth(1) {
        return if path == "." || path.is_empty() {
            name.to_owned()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            format!("{path}.{name}")
        };
    }
    if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

/// Path parameters; a malformed one (e.g. an invalid UUID) is a 400 naming it.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => {
                use axum::extract::path::ErrorKind;
                use axum::extract::rejection::PathRejection;
                let field = match &rejection {
                    PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                        ErrorKind::ParseErrorAtKey { key, .. }
                        | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                        _ => "id".to_owned(),
                    },
                    _ => "id".to_owned(),
                };
                Err(ApiError::invalid_field(field, "is not valid (expected a UUID)"))
            }
        }
    }
}

/// Query parameters. Unknown parameters, wrong types and malformed values are a 400
/// naming the parameter; declare the struct with `deny_unknown_fields`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        // Postgres text cannot hold U+0000: refuse it here rather than fail in SQL.
        if let Some((key, _)) =
            form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::invalid_field(
                key.replace('\0', ""),
                "must not contain NUL characters",
            ));
        }
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let message = error.inner().to_string();
                let field = field_name(&error.path().to_string(), &message);
                let field = if field == "body" {
                    "query".to_owned()
                } else {
                    field
                };
                ApiError::invalid_field(field, message)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: u8,
    }

    fn field_of(result: Result<Body, ApiError>) -> (StatusCode, String) {
        let error = result.expect_err("should be refused");
        let status = error.status();
        (
            status,
            error
                .details()
                .first()
                .map(|d| d.field.clone())
                .unwrap_or_default(),
        )
    }

    #[test]
    fn a_key_given_twice_is_refused_naming_it_at_any_depth() {
        let (status, field) = field_of(parse_json(br#"{"email": "a", "age": 3, "email": "b"}"#));
        assert_eq!((status, field.as_str()), (StatusCode::BAD_REQUEST, "email"));
        let nested: Result<serde_json::Value, _> = parse_json(br#"{"x": [{"k": 1, "k": 2}]}"#);
        assert!(nested.is_err(), "a nested object with a key twice is refused");
        let fine: serde_json::Value =
            parse_json(br#"{"x": [{"k": 1}, {"k": 2}], "n": -1.5}"#).expect("valid");
        assert_eq!(fine["x"][1]["k"], 2);
        assert_eq!(fine["n"], -1.5);
    }

    #[test]
    fn malformed_json_is_a_400_without_field() {
        let (status, field) = field_of(parse_json(b"{\"email\": "));
        assert_eq!((status, field.as_str()), (StatusCode::BAD_REQUEST, ""));
    }

    #[test]
    fn missing_unknown_and_mistyped_fields_are_named() {
        assert_eq!(field_of(parse_json(br#"{"age": 3}"#)).1, "email");
        assert_eq!(
            field_of(parse_json(br#"{"email": "a", "age": 3, "admin": true}"#)).1,
            "admin"
        );
        assert_eq!(field_of(parse_json(br#"{"email": 5, "age": 3}"#)).1, "email");
        assert_eq!(field_of(parse_json(br#"{"email": "a", "age": 300}"#)).1, "age");
        assert_eq!(field_of(parse_json(br#""hello""#)).1, "body");
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        assert!(parse_json::<Body>(br#"{"email": "a", "age": 3} x"#).is_err());
    }
}
