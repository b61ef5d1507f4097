//! An in-process stub dedicated game server: answers `POST /session/create` with a fresh
//! session on its own address, remembers which players each session was created for (the
//! verification cross-checks `match_found` against it), and registers itself in Redis as
//! many `dedicated_server:*` entries so allocation never runs out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

/// Largest request body the stub reads.
const MAX_BODY_BYTES: usize = 64 * 1_024;

/// Session id -> players it was created for.
pub type Sessions = BTreeMap<Uuid, Vec<Uuid>>;

/// The request body of `POST /session/create`.
#[derive(Deserialize)]
struct CreateSession {
    players: Vec<Uuid>,
}

/// A running stub; stops when dropped.
pub struct StubGameServer {
    /// Where it listens; also the `server_address` it hands out.
    pub addr: SocketAddr,
    /// Every session created so far.
    sessions: Arc<Mutex<Sessions>>,
    /// The accept loop (which owns the connection tasks).
    task: JoinHandle<()>,
}

impl StubGameServer {
    /// Binds `bind` (a loopback address, checked by the caller) and starts serving.
    pub async fn start(bind: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let sessions = Arc::new(Mutex::new(Sessions::new()));
        let task = tokio::spawn(accept_loop(listener, addr, sessions.clone()));
        Ok(Self {
            addr,
            sessions,
            task,
        })
    }

    /// A copy of every session created so far.
    pub fn sessions(&self) -> Sessions {
        self.sessions
            .lock()
            .map(|sessions| sessions.clone())
            .unwrap_or_default()
    }
}

impl Drop for StubGameServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; aborting drops the set, which aborts each connection.
async fn accept_loop(listener: TcpListener, addr: SocketAddr, sessions: Arc<Mutex<Sessions>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let sessions = sessions.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(request, addr, sessions.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Answers one request.
async fn handle(
    request: Request<Incoming>,
    addr: SocketAddr,
    sessions: Arc<Mutex<Sessions>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if request.method() != Method::POST || request.uri().path() != "/session/create" {
        return Ok(reply(StatusCode::NOT_FOUND, "not found".to_owned()));
    }
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "unreadable body".to_owned())),
    };
    let Ok(create) = serde_json::from_slice::<CreateSession>(&body) else {
        return Ok(reply(StatusCode::BAD_REQUEST, "malformed body".to_owned()));
    };
    let session_id = Uuid::new_v4();
    if let Ok(mut sessions) = sessions.lock() {
        sessions.insert(session_id, create.players);
    }
    let answer = serde_json::json!({
        "server_address": addr.to_string(),
        "session_id": session_id,
    });
    Ok(reply(StatusCode::OK, answer.to_string()))
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// The registry keys the stub is registered under: `<prefix>loadgen-<i>`.
pub fn registry_keys(registry_prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{registry_prefix}loadgen-{i:05}"))
        .collect()
}

/// Registers `keys`, each pointing at `addr` as an idle server.
pub async fn register(
    redis: &mut redis::aio::MultiplexedConnection,
    keys: &[String],
    addr: SocketAddr,
) -> redis::RedisResult<()> {
    let entry = serde_json::json!({ "address": addr.to_string(), "status": "idle" }).to_string();
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.set(key, &entry).ignore();
    }
    pipe.query_async(redis).await
}

/// Removes the registry keys again.
pub async fn unregister(
    redis: &mut redis::aio::MultiplexedConnection,
    keys: &[String],
) -> redis::RedisResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    redis::cmd("DEL").arg(keys).query_async(redis).await
}
