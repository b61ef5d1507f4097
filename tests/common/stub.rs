//! A stub dedicated game server: answers `POST /session/create` the way a test asks, and
//! registers itself in the test's registry so the service's allocator finds it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::env::TestEnv;

/// How the stub answers `POST /session/create`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with `{"server_address": "<its address>", "session_id": <fresh uuid>}`.
    Ok,
    /// 500 with a text body.
    Http500,
    /// Never answers (the request hangs until the caller gives up).
    Hang,
    /// 200 with a body that is not the documented JSON.
    Malformed,
}

/// One `POST /session/create` the stub received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// The players the service asked a session for.
    pub players: Vec<Uuid>,
    /// The session id the stub answered with (`Behaviour::Ok` only).
    pub session_id: Option<Uuid>,
}

/// What the request handlers share.
struct StubState {
    behaviour: Behaviour,
    address: String,
    requests: Mutex<Vec<CreateRequest>>,
}

/// A running stub game server.
pub struct StubGameServer {
    /// Its `host:port`, as registered and as answered in `server_address`.
    pub address: String,
    /// Its registry name: the key is `<registry_prefix><name>`.
    pub name: String,
    state: Arc<StubState>,
    task: JoinHandle<()>,
}

impl StubGameServer {
    /// Starts a stub on 127.0.0.1 and registers it, idle, in `env`'s registry.
    pub async fn start(env: &TestEnv, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("cannot bind the stub game server: {error}"));
        let addr: SocketAddr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("stub listener has no address: {error}"));
        let state = Arc::new(StubState {
            behaviour,
            address: addr.to_string(),
            requests: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        let name = format!("stub-{behaviour:?}-{}", Uuid::new_v4()).to_lowercase();
        env.inspector()
            .await
            .register_server(&name, &state.address)
            .await;
        Self {
            address: state.address.clone(),
            name,
            state,
            task,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<CreateRequest> {
        self.state
            .requests
            .lock()
            .map(|requests| requests.clone())
            .unwrap_or_default()
    }
}

impl Drop for StubGameServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<StubState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn handle(
    state: Arc<StubState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != "/session/create" {
        return Ok(respond(StatusCode::NOT_FOUND, "not found".to_owned()));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(respond(StatusCode::BAD_REQUEST, "bad body".to_owned())),
    };
    let players = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| {
            value.get("players")?.as_array().map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().and_then(|id| Uuid::parse_str(id).ok()))
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default();
    let session_id = (state.behaviour == Behaviour::Ok).then(Uuid::new_v4);
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(CreateRequest {
            players,
            session_id,
        });
    }
    let response = match (state.behaviour, session_id) {
        (Behaviour::Ok, Some(session_id)) => {
            let body = serde_json::json!({
                "server_address": state.address,
                "session_id": session_id,
            });
            respond(StatusCode::OK, body.to_string())
        }
        (Behaviour::Http500, _) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "game server exploded".to_owned(),
        ),
        (Behaviour::Hang, _) => std::future::pending().await,
        (Behaviour::Malformed, _) | (Behaviour::Ok, None) => respond(
            StatusCode::OK,
            r#"{"server_address": 7777, "session": "not what you asked for""#.to_owned(),
        ),
    };
    Ok(response)
}
