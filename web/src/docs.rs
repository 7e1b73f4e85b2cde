//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs`, served from
//! assets compiled into the binary so they work offline.

use crate::{ErrorBody, ErrorEnvelope, FieldError, Meta};
use axum::Router;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// `/openapi.json` and `/docs` for a document.
pub fn docs_routes(openapi: utoipa::openapi::OpenApi) -> Router {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
}

/// Declares the `bearer` security scheme (EdDSA JWT access tokens) that authenticated
/// endpoints name with `security(("bearer" = []))`. Use as `modifiers(&web::BearerAuth)`.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (EdDSA)")
                    .build(),
            ),
        );
    }
}

/// Documents the API-wide rate limit on every operation: 429 `RATE_LIMITED` with
/// `Retry-After`, and the `RateLimit-*` headers every answer carries. Use on the APIs
/// that [`crate::rate_limit::limit`] guards.
pub struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let integer = || {
            utoipa::openapi::Header::new(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .build(),
            )
        };
        for operation in operations(openapi) {
            let description = "`RATE_LIMITED`: over the rate limit; `Retry-After` says when to try \
                again. Every answer of a limited route carries `RateLimit-Limit`, \
                `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`";
            let response = operation
                .responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(|| RefOr::T(Response::new(description)));
            if let RefOr::T(response) = response {
                response.headers.insert("Retry-After".to_owned(), integer());
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    response.headers.insert(name.to_owned(), integer());
                }
                response
                    .content
                    .entry("application/json".to_owned())
                    .or_insert_with(|| {
                        Content::new(Some(RefOr::Ref(Ref::from_schema_name(ErrorEnvelope::name()))))
                    });
            }
        }
    }
}

/// Documents read-your-writes on the command API: every successful write answer carries
/// `X-Consistency-Token`.
pub struct ConsistencyIssued;

impl Modify for ConsistencyIssued {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in operations(openapi) {
            for (status, response) in operation.responses.responses.iter_mut() {
                if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                    let mut header = utoipa::openapi::Header::new(String::schema());
                    header.description = Some(
                        "The streams this write appended to and their versions; send it to the \
                         query API as `X-Consistency-Token` to read this write (absent when \
                         nothing was appended)"
                            .to_owned(),
                    );
                    response.headers.insert("X-Consistency-Token".to_owned(), header);
                }
            }
        }
    }
}

/// Documents read-your-writes on the query API: every `/api/` operation takes an optional
/// `X-Consistency-Token` header and then answers once the read models reflect it, or 503.
pub struct ConsistencyAccepted;

impl Modify for ConsistencyAccepted {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        for operation in operations_under(openapi, "/api/") {
            let parameter = ParameterBuilder::new()
                .name("X-Consistency-Token")
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::False)
                .description(Some(
                    "A write's `X-Consistency-Token`: answer only once the read models reflect \
                     that write (waiting at most `CONSISTENCY_WAIT_MS`, else 503 with \
                     `Retry-After`); malformed: 400 naming the header",
                ))
                .schema(Some(String::schema()))
                .build();
            operation.parameters.get_or_insert_with(Vec::new).push(parameter);
        }
    }
}

/// Every operation of the document.
fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    operations_under(openapi, "/")
}

/// Every operation of the paths starting with `prefix`.
fn operations_under<'a>(
    openapi: &'a mut utoipa::openapi::OpenApi,
    prefix: &'a str,
) -> impl Iterator<Item = &'a mut Operation> {
    let paths = openapi.paths.paths.iter_mut();
    paths
        .filter(move |(path, _)| path.starts_with(prefix))
        .flat_map(|(_, item)| {
            [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
        })
}

/// Documents the answers the shared layers give on any operation, so that a document lists
/// every status a client can see: 400 `VALIDATION_ERROR` where there are parameters or a
/// body, 401 `UNAUTHORIZED` where a token is required, 413 `PAYLOAD_TOO_LARGE` and 415
/// `UNSUPPORTED_MEDIA_TYPE` where there is a body, 503 `SERVICE_UNAVAILABLE` everywhere
/// (request timeout, a dependency away); and gives every error answer that names no body the
/// error envelope. Use as `modifiers(&web::BearerAuth, &web::ErrorResponses)`.
pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in [
            (ErrorEnvelope::name(), ErrorEnvelope::schema()),
            (ErrorBody::name(), ErrorBody::schema()),
            (Meta::name(), Meta::schema()),
            (FieldError::name(), FieldError::schema()),
        ] {
            components.schemas.entry(name.into_owned()).or_insert(schema);
        }
        operations(openapi).for_each(document_errors);
    }
}

fn document_errors(operation: &mut Operation) {
    let has_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let shared = [
        (
            has_input || has_body,
            "400",
            "`VALIDATION_ERROR`: a parameter or the body is malformed or invalid",
        ),
        (secured, "401", "`UNAUTHORIZED`: no valid bearer token"),
        (has_body, "413", "`PAYLOAD_TOO_LARGE`: the body is over the limit"),
        (
            has_body,
            "415",
            "`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`",
        ),
        (
            true,
            "503",
            "`SERVICE_UNAVAILABLE`: a dependency is away or the request timed out (with `Retry-After`)",
        ),
    ];
    let responses = &mut operation.responses.responses;
    for (applies, status, description) in shared {
        if applies {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::T(Response::new(description)));
        }
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && !status.starts_with(['1', '2', '3'])
            && response.content.is_empty()
        {
            let schema = RefOr::Ref(Ref::from_schema_name(ErrorEnvelope::name()));
            response
                .content
                .insert("application/json".to_owned(), Content::new(Some(schema)));
        }
    }
}
