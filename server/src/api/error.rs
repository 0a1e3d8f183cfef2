//! The API's one error shape, `{ "error": { "code", "message" } }`, and its helpers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::registry::RegistryError;

/// JSON errors share one shape across the API: `{ "error": { "code", "message" } }`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// An API error: rendered as `{ "error": { "code", "message" } }` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, &self.message)
    }
}

pub fn api_err(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_string(),
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// `201 Created` with `body`: what a route that adds something answers.
pub fn created(body: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub fn bad_request(msg: impl std::fmt::Display) -> ApiError {
    api_err(StatusCode::BAD_REQUEST, "bad_request", &msg.to_string())
}

/// A JSON request body whose rejection (not JSON, not of the expected shape) is a `400` in the
/// API's error format rather than axum's plain text.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state)
            .await
            .map_err(bad_request)?;
        Ok(Self(v))
    }
}

pub fn not_found(msg: &str) -> ApiError {
    api_err(StatusCode::NOT_FOUND, "not_found", msg)
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        registry_error(e)
    }
}

impl From<crate::net::provision::ProvisionError> for ApiError {
    fn from(e: crate::net::provision::ProvisionError) -> Self {
        use crate::net::provision::ProvisionError;
        match e {
            ProvisionError::Registry(r) => registry_error(r),
            other => api_err(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                &other.to_string(),
            ),
        }
    }
}

pub fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid(m) => bad_request(m),
        RegistryError::NotFound(m) => not_found(&format!("{m} not found")),
        RegistryError::Exists(m) => api_err(
            StatusCode::CONFLICT,
            "exists",
            &format!("{m} exists already"),
        ),
        other => api_err(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            &other.to_string(),
        ),
    }
}

/// Runs reading or rebuilding work off the I/O tasks; a panic in it is an internal error.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        api_err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        )
    })
}
