//! The game server's HTTP contract: `POST /session/create` and its answer.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use uuid::Uuid;

use super::{Allocation, AllocationError, parse_created_session};
use crate::limits;

/// The request body of `POST /session/create`.
#[derive(Serialize)]
struct CreateSession<'a> {
    players: &'a [Uuid],
}

/// Asks game servers for sessions over HTTP.
pub struct SessionCreator {
    /// The HTTP client for `/session/create`.
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Default for SessionCreator {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionCreator {
    /// A client with hyper's default connector.
    pub fn new() -> Self {
        Self {
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `POST /session/create` on `address`, and the answer checked.
    pub async fn create(
        &self,
        address: &str,
        players: &[Uuid],
    ) -> Result<Allocation, AllocationError> {
        let body = serde_json::to_vec(&CreateSession { players })
            .map_err(|e| AllocationError::MalformedBody(e.to_string()))?;
        let request = hyper::Request::post(format!("http://{address}/session/create"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| AllocationError::Unreachable(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| AllocationError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(AllocationError::HttpStatus(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), limits::MAX_ALLOCATION_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| AllocationError::MalformedBody(e.to_string()))?
            .to_bytes();
        parse_created_session(&body)
    }
}
