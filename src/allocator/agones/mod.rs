//! Agones as the allocation backend: the Agones allocator service picks a Ready GameServer
//! (`POST /gameserverallocation`, REST gateway of `proto/allocation/allocation.proto`), the
//! matchmaker makes the session id and hands it and the players to the game server as
//! allocation metadata, and the answer's address and port become `server_address`.
//!
//! Refusals map onto the error codes of the registry backend, so the same degradation
//! policy applies: "no GameServer" (HTTP `unallocated_status`, 429 by default, and 409 for
//! the allocator's contention) is `NoIdleServer`, 504 is `Timeout`, any other status
//! `HttpStatus`, an unusable body `MalformedBody`, a failed connection `Unreachable`.

pub mod settings;
pub mod tls;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use uuid::Uuid;

use super::{Allocation, AllocationError, Allocator};
use crate::clock::Ids;
use crate::limits;
use settings::AgonesSettings;

/// The allocator service's path for an allocation.
pub const ALLOCATION_PATH: &str = "/gameserverallocation";
/// The status the REST gateway answers for gRPC `Aborted`: the allocator's "too many
/// concurrent requests" contention, worth a retry like "no GameServer".
const CONTENTION_STATUS: u16 = 409;
/// The status the REST gateway answers for gRPC `DeadlineExceeded`.
const DEADLINE_STATUS: u16 = 504;

/// Allocates GameServers from Agones.
pub struct AgonesAllocator {
    /// Selectors, namespace, metadata keys, port choice, "no GameServer" status.
    settings: AgonesSettings,
    /// `{url}/gameserverallocation`.
    endpoint: hyper::Uri,
    /// Session ids: the matchmaker makes them, Agones does not.
    ids: Arc<dyn Ids>,
    /// HTTPS (or HTTP) client with keep-alive, so allocations reuse TLS sessions.
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl AgonesAllocator {
    /// An allocator for validated `settings`; reads the TLS files, so a missing or bad
    /// file stops the start-up with a message naming it.
    pub fn new(settings: &AgonesSettings, ids: Arc<dyn Ids>) -> Result<Self, String> {
        let endpoint = format!("{}{ALLOCATION_PATH}", settings.url.trim_end_matches('/'))
            .parse()
            .map_err(|e| format!("allocator.agones.url {:?}: {e}", settings.url))?;
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(settings)?)
            .https_or_http();
        let builder = match tls::server_name(settings)? {
            Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
            None => builder,
        };
        let connector = builder.enable_http1().build();
        Ok(Self {
            settings: settings.clone(),
            endpoint,
            ids,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Maps a refusal status onto the allocation errors.
    fn refusal(&self, status: u16) -> AllocationError {
        if status == self.settings.unallocated_status || status == CONTENTION_STATUS {
            AllocationError::NoIdleServer
        } else if status == DEADLINE_STATUS {
            AllocationError::Timeout
        } else {
            AllocationError::HttpStatus(status)
        }
    }

    /// Sends the allocation request; the status and the (bounded) body.
    async fn post(&self, body: Vec<u8>) -> Result<(u16, Bytes), AllocationError> {
        let request = hyper::Request::post(self.endpoint.clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| AllocationError::Unreachable(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| AllocationError::Unreachable(error_chain(&e)))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), limits::MAX_ALLOCATION_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| AllocationError::MalformedBody(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    }
}

#[async_trait]
impl Allocator for AgonesAllocator {
    async fn allocate(&self, players: &[Uuid]) -> Result<Allocation, AllocationError> {
        let session_id = self.ids.new_id();
        let request = wire::request(&self.settings, session_id, players);
        let body = serde_json::to_vec(&request)
            .map_err(|e| AllocationError::MalformedBody(e.to_string()))?;
        let (status, body) = self.post(body).await?;
        if !(200..300).contains(&status) {
            let error = self.refusal(status);
            tracing::warn!(status, %error, answer = %String::from_utf8_lossy(&body), "Agones refused the allocation");
            return Err(error);
        }
        let (server_address, answer) =
            wire::server_address(&body, self.settings.port_name.as_deref())?;
        tracing::info!(%session_id, game_server = %answer.game_server_name, %server_address, "Agones allocated a GameServer");
        Ok(Allocation {
            session_id,
            server_address,
        })
    }
}

/// An error with its causes, which hold what went wrong (refused, TLS, DNS).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
