//! A stub Agones allocator service: `POST /gameserverallocation` with the JSON of the REST
//! gateway generated from Agones's `proto/allocation/allocation.proto`, answering the way a
//! test asks (an allocated GameServer, Agones's "no GameServer" refusal, silence, garbage,
//! an HTTP error), over plain HTTP or mutual TLS with the certificates in
//! `tests/fixtures/agones-tls/`.

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
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The folder of the test CA, server and client certificates.
pub const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agones-tls");

/// A fixture file's path.
pub fn tls_file(name: &str) -> String {
    format!("{TLS_DIR}/{name}")
}

/// The host port every allocated stub GameServer answers with.
pub const GAME_PORT: u16 = 7463;

/// How the stub answers an allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgonesBehaviour {
    /// 200 with an allocated GameServer at `address`, ports `default` = [`GAME_PORT`] and
    /// `query` = GAME_PORT + 1, and the request's metadata applied.
    Allocate {
        /// The GameServer's `address` field.
        address: String,
    },
    /// Agones's refusal when no GameServer matches: HTTP `status` (429 by default) with a
    /// gRPC status body, code 8 (ResourceExhausted).
    NoReadyServer {
        /// The status the allocator is configured to answer.
        status: u16,
    },
    /// Never answers.
    Hang,
    /// 200 with a body that is not an AllocationResponse.
    Malformed,
    /// Another HTTP error with a gRPC status body.
    Error(u16),
}

impl AgonesBehaviour {
    /// An allocated GameServer on 127.0.0.1.
    pub fn allocate() -> Self {
        Self::Allocate {
            address: "127.0.0.1".to_owned(),
        }
    }
}

/// What the request handlers share.
struct StubState {
    behaviour: Mutex<AgonesBehaviour>,
    requests: Mutex<Vec<Value>>,
}

/// A running stub allocator service.
pub struct StubAgones {
    /// Its base URL, `http://127.0.0.1:port` or `https://...` with mTLS.
    pub url: String,
    state: Arc<StubState>,
    task: JoinHandle<()>,
}

impl StubAgones {
    /// A stub over plain HTTP (an allocator with TLS disabled).
    pub async fn start(behaviour: AgonesBehaviour) -> Self {
        Self::start_with(behaviour, None).await
    }

    /// A stub that requires a client certificate signed by the test CA, as the allocator
    /// does by default.
    pub async fn start_mtls(behaviour: AgonesBehaviour) -> Self {
        Self::start_with(behaviour, Some(mtls_acceptor())).await
    }

    async fn start_with(behaviour: AgonesBehaviour, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(StubState {
            behaviour: Mutex::new(behaviour),
            requests: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept_loop(listener, tls, state.clone()));
        Self {
            url: format!("{scheme}://{addr}"),
            state,
            task,
        }
    }

    /// Changes how the next allocations are answered.
    pub fn set_behaviour(&self, behaviour: AgonesBehaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// The allocation requests received so far, as JSON.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for StubAgones {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS acceptor with the test server certificate that requires a client certificate
/// issued by the test CA.
fn mtls_acceptor() -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls_file("ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls_file("server.crt"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<StubState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (state, tls) = (state.clone(), tls.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = match tls {
                Some(acceptor) => {
                    // A client without an acceptable certificate fails the handshake here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                None => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
        });
    }
}

/// A response with a JSON body.
fn respond(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// The REST gateway's error body: a `google.rpc.Status`.
fn rpc_status(code: u32, message: &str) -> Value {
    json!({"code": code, "message": message, "details": []})
}

async fn handle(
    state: Arc<StubState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != "/gameserverallocation" {
        return Ok(respond(404, &rpc_status(5, "Not Found")));
    }
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let Ok(allocation) = serde_json::from_slice::<Value>(&body) else {
        return Ok(respond(400, &rpc_status(3, "invalid JSON")));
    };
    state.requests.lock().unwrap().push(allocation.clone());
    let behaviour = state.behaviour.lock().unwrap().clone();
    Ok(match behaviour {
        AgonesBehaviour::Allocate { address } => respond(200, &allocated(&address, &allocation)),
        AgonesBehaviour::NoReadyServer { status } => respond(
            status,
            &rpc_status(8, "there is no available GameServer to allocate"),
        ),
        AgonesBehaviour::Hang => std::future::pending().await,
        AgonesBehaviour::Malformed => respond(200, &json!({"gameServerName": 7})),
        AgonesBehaviour::Error(status) => respond(status, &rpc_status(13, "internal error")),
    })
}

/// An AllocationResponse for a GameServer at `address`, carrying the request's metadata.
fn allocated(address: &str, request: &Value) -> Value {
    json!({
        "gameServerName": "arena-7x2kq-5zn8w",
        "ports": [
            {"name": "default", "port": GAME_PORT},
            {"name": "query", "port": GAME_PORT + 1},
        ],
        "address": address,
        "addresses": [{"type": "InternalIP", "address": address}],
        "nodeName": "node-1",
        "source": "local",
        "metadata": request.get("metadata").cloned().unwrap_or(json!({})),
    })
}
