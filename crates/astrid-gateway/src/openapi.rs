//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

struct DeviceToken;

impl Modify for DeviceToken {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("astrid-device.<principal>.<id>.<secret>")
                    .description(Some("a device token from `astrid pair-device issue`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Astrid gateway", description = "HTTP uplink to an Astrid daemon; every request acts as its device token's principal."),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::openai::models,
        routes::openai::chat,
        routes::threads::list,
        routes::threads::get_one,
        routes::threads::rename,
        routes::threads::delete,
        routes::threads::search,
        routes::turns::create,
        routes::turns::post_turn,
        routes::turns::cancel,
        routes::feed::live,
        crate::approvals::answer,
    ),
    modifiers(&DeviceToken)
)]
struct ApiDoc;

/// The document as JSON text.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}

pub async fn serve() -> Response {
    let mut resp = openapi_json().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(&super::openapi_json()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/v1/models",
            "/v1/chat/completions",
            "/v1/threads",
            "/v1/threads/{id}",
            "/v1/threads/{id}/turns",
            "/v1/threads/{id}/cancel",
            "/v1/events",
            "/v1/approvals/{id}",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["device_token"]["scheme"],
            "bearer"
        );
    }
}
