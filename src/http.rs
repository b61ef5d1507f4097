//! HTTP routing on the service port: `GET /ws` (and `/ws/`) upgrades to a WebSocket session,
//! `GET /metrics` serves Prometheus text, `GET /healthz` answers `ok`; everything else is 404.
//!
//! The upgrade checks, in order: the WebSocket handshake headers (426), the player token
//! (401 when missing, invalid or expired; 503 when the clock cannot be read), the connection
//! cap (503). A refused upgrade sends no Redis command at all.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, AuthError, Identity};
use crate::limits;
use crate::matchmaker::Matchmaker;
use crate::metrics::{Family, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE};
use crate::session;

/// What one HTTP connection needs to route its requests.
pub struct Connection {
    /// The instance.
    pub matchmaker: Arc<Matchmaker>,
    /// Where session tasks are tracked, so shutdown can wait for their cleanup.
    pub sessions: TaskTracker,
    /// Shutdown signal, handed to sessions.
    pub shutdown: CancellationToken,
    /// The connection slot; `None` when the instance is full (WebSocket upgrades get 503).
    pub permit: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
    /// The peer address, for logs.
    pub peer: String,
}

/// A response with a small text body.
fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Routes one request.
pub async fn route(
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path();
    let response = match (request.method(), path) {
        (&Method::GET, "/ws" | "/ws/") => upgrade(&connection, request),
        (&Method::GET, "/metrics") => metrics(&connection, &request),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (_, "/ws" | "/ws/" | "/metrics" | "/healthz") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

/// The metrics exposition: OpenMetrics to a scraper that accepts it (Prometheus asks for
/// it first), else the Prometheus text format 0.0.4.
fn metrics(connection: &Connection, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let metrics = connection.matchmaker.metrics();
    let (body, content_type) = if openmetrics {
        (metrics.render_openmetrics(), OPENMETRICS_CONTENT_TYPE)
    } else {
        (metrics.render(), PROMETHEUS_TEXT_CONTENT_TYPE)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Checks the WebSocket handshake headers; the client's key when they are right.
fn handshake_key(request: &Request<Incoming>) -> Option<HeaderValue> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let upgrade =
        has_token(header::UPGRADE, "websocket") && has_token(header::CONNECTION, "upgrade");
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    if !upgrade || !version {
        return None;
    }
    headers.get(header::SEC_WEBSOCKET_KEY).cloned()
}

/// Why an upgrade is refused before it starts a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// No valid player token: 401.
    Unauthorized(AuthError),
    /// The clock cannot be read, so a token's expiry cannot be checked: 503.
    NoClock,
}

impl Refusal {
    /// The response that says so.
    fn response(self) -> Response<Full<Bytes>> {
        match self {
            Self::Unauthorized(error) => {
                let mut response = text(StatusCode::UNAUTHORIZED, error.body());
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::NoClock => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the token right now, try again\n",
            ),
        }
    }
}

/// Who the request acts for. Reads the clock through the seam (a failure is logged and
/// counted by `now_ms`); touches nothing in Redis.
fn authenticate(
    matchmaker: &Matchmaker,
    request: &Request<Incoming>,
    peer: &str,
) -> Result<Identity, Refusal> {
    let Some(verifier) = matchmaker.verifier() else {
        return Ok(Identity::Anonymous);
    };
    let refuse = |error: AuthError| {
        matchmaker
            .metrics()
            .incr(Family::AuthRejected, error.as_str());
        tracing::info!(%peer, reason = %error, "upgrade refused: player token");
        Refusal::Unauthorized(error)
    };
    let token = auth::token_of(request.headers(), request.uri().query())
        .ok_or_else(|| refuse(AuthError::Missing))?;
    let now_ms = matchmaker
        .now_ms("authenticate")
        .map_err(|_| Refusal::NoClock)?;
    verifier
        .verify(token, now_ms)
        .map(Identity::Player)
        .map_err(refuse)
}

/// Answers the upgrade with 101 and starts the session once hyper hands the socket over.
fn upgrade(connection: &Arc<Connection>, mut request: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(key) = handshake_key(&request) else {
        return text(
            StatusCode::UPGRADE_REQUIRED,
            "a WebSocket upgrade is required\n",
        );
    };
    let identity = match authenticate(&connection.matchmaker, &request, &connection.peer) {
        Ok(identity) => identity,
        Err(refusal) => return refusal.response(),
    };
    let permit = connection
        .permit
        .lock()
        .ok()
        .and_then(|mut slot| slot.take());
    let Some(permit) = permit else {
        connection
            .matchmaker
            .metrics()
            .incr(Family::ConnectionsRejected, "");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections, try another instance\n",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let port = connection.matchmaker.session_port();
    let shutdown = connection.shutdown.clone();
    let peer = connection.peer.clone();
    let max_frame_bytes = connection.matchmaker.settings().limits.max_frame_bytes;
    connection.sessions.spawn(async move {
        let _permit = permit;
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .read_buffer_size(limits::WS_READ_BUFFER_BYTES)
                    .write_buffer_size(0)
                    .max_write_buffer_size(limits::WS_MAX_WRITE_BUFFER_BYTES)
                    .max_frame_size(Some(max_frame_bytes))
                    .max_message_size(Some(max_frame_bytes));
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                session::run(ws, port, shutdown, peer, identity).await;
            }
            Err(error) => tracing::info!(%error, %peer, "upgrade failed"),
        }
    });
    let mut response = text(StatusCode::SWITCHING_PROTOCOLS, "");
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}
