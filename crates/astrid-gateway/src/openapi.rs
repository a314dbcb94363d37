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

/// The answers every operation of a kind can give, whichever handler it is: the document
/// promises what the server does (an authenticated route can meet a bad token, its rate limit,
/// a daemon that is away; a route with a body can meet a malformed one), so a client generated
/// from it, or a conformance checker, is never surprised.
struct CommonAnswers;

impl CommonAnswers {
    const AUTHED: &'static [(u16, &'static str)] = &[
        (401, "no valid device token"),
        (403, "the token's scope does not cover this"),
        (
            429,
            "over the token's rate limit or the principal's quota (`Retry-After`)",
        ),
        (502, "the daemon or a capsule answered with an error"),
        (
            503,
            "the daemon is not reachable, or the gateway is stopping",
        ),
        (504, "the daemon did not answer in time"),
    ];
    const WITH_BODY: &'static [(u16, &'static str)] = &[
        (400, "the body is not JSON, or a value is out of range"),
        (413, "the body is larger than the gateway accepts"),
        (415, "the body is not `application/json`"),
        (422, "the JSON does not fit this route"),
    ];
    const WITH_QUERY: &'static [(u16, &'static str)] =
        &[(400, "a query parameter is missing or malformed")];
    const WITH_PATH: &'static [(u16, &'static str)] = &[(404, "no such thread, approval or route")];
}

impl Modify for CommonAnswers {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in api.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                let params = op.parameters.as_deref().unwrap_or_default();
                let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
                let mut kinds: Vec<&[(u16, &str)]> = Vec::new();
                if op.security.is_some() {
                    kinds.push(Self::AUTHED);
                }
                if op.request_body.is_some() {
                    kinds.push(Self::WITH_BODY);
                }
                if has(ParameterIn::Query) {
                    kinds.push(Self::WITH_QUERY);
                }
                if has(ParameterIn::Path) {
                    kinds.push(Self::WITH_PATH);
                }
                for (status, why) in kinds.into_iter().flatten() {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(*why)
                                .content(
                                    "application/problem+json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
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
        crate::questions::answer,
        routes::grants::capsules,
        routes::grants::tools,
        routes::grants::current_model,
        routes::grants::select_model,
        routes::audit::entries,
        routes::audit::export,
        routes::audit::verify,
    ),
    modifiers(&DeviceToken, &CommonAnswers)
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
            "/v1/questions/{id}",
            "/v1/capsules",
            "/v1/tools",
            "/v1/model",
            "/v1/audit",
            "/v1/audit/export",
            "/v1/audit/verify",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["device_token"]["scheme"],
            "bearer"
        );
    }

    /// What the server can answer is documented, where a client or a checker (Schemathesis)
    /// looks for it: query parameters in the query, and the common answers on every route.
    #[test]
    fn parameters_sit_where_they_are_read_and_common_answers_are_documented() {
        let doc: serde_json::Value = serde_json::from_str(&super::openapi_json()).unwrap();
        let search = &doc["paths"]["/v1/search"]["get"];
        let params = search["parameters"].as_array().unwrap();
        for p in params {
            assert_eq!(p["in"], "query", "{p}");
        }
        let required =
            |name: &str| params.iter().find(|p| p["name"] == name).unwrap()["required"].clone();
        assert_eq!(required("q"), true);
        assert_eq!(required("limit"), false);
        for (path, method) in [
            ("/v1/threads", "get"),
            ("/v1/threads", "post"),
            ("/v1/threads/{id}/turns", "post"),
            ("/v1/chat/completions", "post"),
            ("/v1/approvals/{id}", "post"),
            ("/v1/questions/{id}", "post"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            for status in ["401", "429", "503"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path}: no {status}"
                );
            }
        }
        for (path, method) in [
            ("/v1/threads/{id}", "patch"),
            ("/v1/chat/completions", "post"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            for status in ["400", "413", "415", "422"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path}: no {status}"
                );
            }
        }
        assert!(doc["paths"]["/v1/threads/{id}"]["get"]["responses"]["404"].is_object());
        // The unauthenticated probes promise nothing they do not do.
        assert!(doc["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
    }
}
