//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs`, served from
//! assets compiled into the binary so they work offline.

use axum::Router;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
