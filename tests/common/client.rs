//! A WebSocket test client speaking the service's JSON protocol. Server frames are parsed
//! from raw JSON here (not with the service's own types), so a renamed field or tag on the
//! wire fails the tests the way it would fail a real client.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{WebSocketStream, client_async, tungstenite};
use uuid::Uuid;

/// A server frame, as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// `{"type":"enqueued"}`
    Enqueued,
    /// `{"type":"dequeued"}`
    Dequeued,
    /// `{"type":"start_loading","loading_session_id":...}`
    StartLoading(Uuid),
    /// `{"type":"match_found","session_id":...,"server_address":...}`
    MatchFound {
        /// The game server's session.
        session_id: Uuid,
        /// Where to connect.
        server_address: String,
    },
    /// `{"type":"error","code":...,"message":...}`
    Error {
        /// The stable code.
        code: String,
        /// The human-readable text.
        message: String,
    },
}

impl Msg {
    /// Parses a text frame; panics on anything the protocol does not define.
    fn parse(text: &str) -> Self {
        let value: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|error| panic!("server sent invalid JSON {text:?}: {error}"));
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_else(|| panic!("server frame {text} lacks string field {name:?}"))
                .to_owned()
        };
        let uuid = |name: &str| {
            Uuid::parse_str(&field(name))
                .unwrap_or_else(|error| panic!("{name} in {text} is not a UUID: {error}"))
        };
        match field("type").as_str() {
            "enqueued" => Self::Enqueued,
            "dequeued" => Self::Dequeued,
            "start_loading" => Self::StartLoading(uuid("loading_session_id")),
            "match_found" => Self::MatchFound {
                session_id: uuid("session_id"),
                server_address: field("server_address"),
            },
            "error" => Self::Error {
                code: field("code"),
                message: field("message"),
            },
            other => panic!("server sent an unknown frame type {other:?}: {text}"),
        }
    }
}

/// A TCP stream whose outgoing direction can be cut while the socket stays open: writes
/// then vanish, like the traffic of a frozen client behind a dead uplink.
pub struct MuteStream {
    inner: TcpStream,
    muted: Arc<AtomicBool>,
}

impl AsyncRead for MuteStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuteStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.muted.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.muted.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a client proves who it is at the upgrade.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// No token at all (dev mode, or a test of the refusal).
    Anonymous,
    /// `Authorization: Bearer <token>`.
    Header(String),
    /// `?token=<token>` on the URL.
    Query(String),
}

impl Credentials {
    /// A valid bearer token for `player`, signed with the harness secret.
    pub fn of(player: Uuid) -> Self {
        Self::Header(super::env::token(player))
    }
}

/// One client connection.
pub struct Client {
    /// A label for failure messages.
    pub name: String,
    /// The player this client plays as: its token's, or in dev mode the one it picked.
    pub player: Uuid,
    ws: WebSocketStream<MuteStream>,
    /// Set to cut the outgoing direction (see [`MuteStream`]).
    muted: Arc<AtomicBool>,
}

/// The URL of the WebSocket endpoint of the service at `addr`.
pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

impl Client {
    /// Connects as a fresh player with a valid token; panics when the upgrade fails.
    pub async fn connect(addr: SocketAddr, name: &str) -> Self {
        Self::connect_as(addr, name, super::new_player()).await
    }

    /// Connects as `player` with a valid token; panics when the upgrade fails.
    pub async fn connect_as(addr: SocketAddr, name: &str, player: Uuid) -> Self {
        match Self::try_connect_with(addr, name, player, Credentials::of(player)).await {
            Ok(client) => client,
            Err(error) => panic!("{name}: WebSocket connect to {addr} failed: {error}"),
        }
    }

    /// Connects without a token (dev mode); the client will play as a fresh player.
    pub async fn connect_anonymous(addr: SocketAddr, name: &str) -> Self {
        let player = super::new_player();
        match Self::try_connect_with(addr, name, player, Credentials::Anonymous).await {
            Ok(client) => client,
            Err(error) => panic!("{name}: WebSocket connect to {addr} failed: {error}"),
        }
    }

    /// Connects as a fresh player, returning the handshake error (e.g. an HTTP 503)
    /// instead of panicking.
    pub async fn try_connect(addr: SocketAddr, name: &str) -> Result<Self, tungstenite::Error> {
        let player = super::new_player();
        Self::try_connect_with(addr, name, player, Credentials::of(player)).await
    }

    /// Connects with `credentials`, to play as `player`; the handshake error (an HTTP 401
    /// or 503) instead of a panic.
    pub async fn try_connect_with(
        addr: SocketAddr,
        name: &str,
        player: Uuid,
        credentials: Credentials,
    ) -> Result<Self, tungstenite::Error> {
        let what = format!("{name}: WebSocket connect to {addr}");
        let muted = Arc::new(AtomicBool::new(false));
        let url = match &credentials {
            Credentials::Query(token) => format!("{}?token={token}", ws_url(addr)),
            Credentials::Anonymous | Credentials::Header(_) => ws_url(addr),
        };
        let mut request = url.into_client_request()?;
        if let Credentials::Header(token) = &credentials {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .unwrap_or_else(|error| panic!("token {token:?} is no header value: {error}"));
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let handshake = async {
            let inner = TcpStream::connect(addr).await?;
            inner.set_nodelay(true)?;
            let stream = MuteStream {
                inner,
                muted: muted.clone(),
            };
            client_async(request, stream).await
        };
        let (ws, _response) = super::within(super::WAIT, &what, handshake).await?;
        Ok(Self {
            name: name.to_owned(),
            player,
            ws,
            muted,
        })
    }

    /// From now on nothing this client sends reaches the server (pongs included), while it
    /// still receives: a frozen client whose socket stays open.
    pub fn mute(&self) {
        self.muted.store(true, Ordering::SeqCst);
    }

    /// Connects as a fresh player and enqueues it for `mode`; returns once `enqueued`
    /// arrived.
    pub async fn enqueued(addr: SocketAddr, name: &str, mode: &str) -> (Self, Uuid) {
        let mut client = Self::connect(addr, name).await;
        let player = client.player;
        client.enqueue(player, mode).await;
        client.expect(Msg::Enqueued).await;
        (client, player)
    }

    /// Sends `enqueue` for this client's own player.
    pub async fn enqueue_self(&mut self, mode: &str) {
        self.enqueue(self.player, mode).await;
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &str) {
        let what = format!("{}: sending {text:?}", self.name);
        super::within(super::WAIT, &what, self.ws.send(Message::text(text)))
            .await
            .unwrap_or_else(|error| panic!("{what} failed: {error}"));
    }

    /// Sends one text frame; `false` when the connection is already gone (a server that
    /// closed it may still have answered first).
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        let what = format!("{}: sending {text:?}", self.name);
        super::within(super::WAIT, &what, self.ws.send(Message::text(text)))
            .await
            .is_ok()
    }

    /// Sends one frame of any kind.
    pub async fn send_message(&mut self, message: Message) {
        let what = format!("{}: sending a frame", self.name);
        super::within(super::WAIT, &what, self.ws.send(message))
            .await
            .unwrap_or_else(|error| panic!("{what} failed: {error}"));
    }

    /// Sends several text frames in one write, so the server receives them as one burst.
    pub async fn send_burst(&mut self, texts: &[String]) {
        let what = format!("{}: sending a burst of {} frames", self.name, texts.len());
        let burst = async {
            for text in texts {
                self.ws.feed(Message::text(text.as_str())).await?;
            }
            self.ws.flush().await
        };
        super::within(super::WAIT, &what, burst)
            .await
            .unwrap_or_else(|error| panic!("{what} failed: {error}"));
    }

    /// The `enqueue` frame for `player` and `mode`.
    pub fn enqueue_frame(player: Uuid, mode: &str) -> String {
        serde_json::json!({ "type": "enqueue", "player_id": player, "game_mode": mode }).to_string()
    }

    /// Sends `enqueue`.
    pub async fn enqueue(&mut self, player: Uuid, mode: &str) {
        self.send_text(&Self::enqueue_frame(player, mode)).await;
    }

    /// Sends `dequeue`.
    pub async fn dequeue(&mut self) {
        self.send_text(r#"{"type":"dequeue"}"#).await;
    }

    /// Sends `loading_complete` for `loading`.
    pub async fn loading_complete(&mut self, loading: Uuid) {
        let frame = serde_json::json!({
            "type": "loading_complete",
            "loading_session_id": loading,
        });
        self.send_text(&frame.to_string()).await;
    }

    /// The next data frame within `limit`: `Ok` with the message, `Err` with what ended the
    /// connection instead, `None` on timeout. Pings and pongs are skipped (the library
    /// answers pings by itself).
    async fn next_frame(&mut self, limit: Duration) -> Option<Result<Msg, String>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => return Some(Ok(Msg::parse(text.as_str()))),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(bytes))) => {
                    return Some(Err(format!("a binary frame of {} bytes", bytes.len())));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err(format!("a close frame {frame:?}")));
                }
                Some(Err(error)) => return Some(Err(format!("a connection error: {error}"))),
                None => return Some(Err("the end of the stream".to_owned())),
            }
        }
    }

    /// The next server message within [`super::WAIT`].
    pub async fn recv(&mut self) -> Msg {
        match self.next_frame(super::WAIT).await {
            Some(Ok(message)) => message,
            Some(Err(ending)) => panic!("{}: expected a message, got {ending}", self.name),
            None => panic!("{}: no message within {:?}", self.name, super::WAIT),
        }
    }

    /// Expects exactly `expected` as the next message.
    pub async fn expect(&mut self, expected: Msg) {
        let got = self.recv().await;
        assert_eq!(got, expected, "{}: unexpected message", self.name);
    }

    /// Expects an `error` frame with `code` next; returns its message text.
    pub async fn expect_error(&mut self, code: &str) -> String {
        match self.recv().await {
            Msg::Error { code: got, message } if got == code => {
                assert!(
                    !message.is_empty(),
                    "{}: error {code} has no message",
                    self.name
                );
                message
            }
            other => panic!("{}: expected error {code:?}, got {other:?}", self.name),
        }
    }

    /// Expects `start_loading` next; returns its loading session id.
    pub async fn expect_start_loading(&mut self) -> Uuid {
        match self.recv().await {
            Msg::StartLoading(loading) => loading,
            other => panic!("{}: expected start_loading, got {other:?}", self.name),
        }
    }

    /// Expects `match_found` next; returns its session id and server address.
    pub async fn expect_match_found(&mut self) -> (Uuid, String) {
        match self.recv().await {
            Msg::MatchFound {
                session_id,
                server_address,
            } => (session_id, server_address),
            other => panic!("{}: expected match_found, got {other:?}", self.name),
        }
    }

    /// The next message, or the close code and reason if the server closes instead.
    pub async fn next_or_close(&mut self) -> Result<Msg, (u16, String)> {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: nothing within {:?}", self.name, super::WAIT));
            match frame {
                Some(Ok(Message::Text(text))) => return Ok(Msg::parse(text.as_str())),
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Err((u16::from(code), reason.to_string()));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => panic!(
                    "{}: expected a message or a close, got {other:?}",
                    self.name
                ),
            }
        }
    }

    /// Expects nothing at all (no message, no close) for `window`.
    pub async fn expect_silence(&mut self, window: Duration) {
        if let Some(got) = self.next_frame(window).await {
            panic!(
                "{}: expected silence for {window:?}, got {got:?}",
                self.name
            );
        }
    }

    /// Expects the server to close the connection with `code` next (skipping no data
    /// frame); returns the close reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("{}: no close frame within {:?}", self.name, super::WAIT)
                });
            match frame {
                Some(Ok(Message::Close(Some(CloseFrame { code: got, reason })))) => {
                    assert_eq!(
                        u16::from(got),
                        code,
                        "{}: closed with another code (reason {reason:?})",
                        self.name
                    );
                    return reason.to_string();
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => panic!(
                    "{}: expected a close frame with code {code}, got {other:?}",
                    self.name
                ),
            }
        }
    }

    /// Closes the connection with a normal close handshake.
    pub async fn close(mut self) {
        let what = format!("{}: closing", self.name);
        let _ = super::within(super::WAIT, &what, self.ws.close(None)).await;
        // Drain until the server's close arrives or the stream ends, bounded.
        let _ = tokio::time::timeout(super::WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Drops the TCP connection without a close handshake, like a crashed client.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}
