//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs`, served from
//! assets compiled into the binary so they work offline.

use axum::Router;
use utoipa_swagger_ui::SwaggerUi;

/// `/openapi.json` and `/docs` for a document.
pub fn docs_routes(openapi: utoipa::openapi::OpenApi) -> Router {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
}
