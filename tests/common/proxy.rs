//! A TCP proxy that delays one direction: it puts a slow network link between one
//! instance and Redis, without touching the service.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest chunk moved at once.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks in flight per direction before the reader waits.
const CHUNKS_IN_FLIGHT: usize = 1_024;

/// A running proxy; stops accepting when dropped.
pub struct DelayProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DelayProxy {
    /// Proxies to `upstream`, delaying every byte from the client to `upstream` by
    /// `delay` (a constant latency: chunks do not add up their delays).
    pub async fn start(upstream: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("cannot bind the proxy: {error}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("proxy has no address: {error}"));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream, delay));
            }
        });
        Self { addr, task }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (chunks, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let read_client = async move {
        let mut buffer = vec![0_u8; CHUNK_BYTES];
        loop {
            match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    let chunk = buffer.get(..read).unwrap_or_default().to_vec();
                    if chunks.send((Instant::now() + delay, chunk)).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let write_server = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if server_write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    let back = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        () = async { tokio::join!(read_client, write_server); } => {}
        _ = back => {}
    }
}
