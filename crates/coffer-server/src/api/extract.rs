//! Request parts as the API reads them: a JSON body and a query string
//! whose faults are answered as problem details (400), like every error.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(value)| JsonBody(value))
            .map_err(|rejection| Problem::invalid_input(rejection.body_text().replace('\n', " ")))
    }
}

/// The query string.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Params(value))
            .map_err(|rejection| Problem::invalid_input(rejection.body_text().replace('\n', " ")))
    }
}

/// The object key: the path's tail after the route's prefix, percent-decoded.
pub struct Key(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(key)| Key(key))
            .map_err(|rejection| Problem::invalid_input(rejection.body_text().replace('\n', " ")))
    }
}
