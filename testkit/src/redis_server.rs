//! The Redis the tests run against: `MATCH_TEST_REDIS_URL` when set, otherwise one
//! redis-server per test binary on a free loopback port, gone when the binary exits.
//!
//! The server is started by `sh` together with a watchdog loop that kills it as soon as the
//! test process is gone, whether the process ended normally, panicked or was killed: Rust
//! runs no destructor for a static at exit, so the cleanup cannot live in this process.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Environment variable naming an already running Redis to use instead of starting one.
pub const REDIS_URL_ENV: &str = "MATCH_TEST_REDIS_URL";

/// How long a started redis-server may take to answer PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at starting redis-server (a free port may be taken between probe and start).
const START_ATTEMPTS: u32 = 3;

/// Kills redis-server once the process `$1` is gone; redis-server's own arguments follow.
const WATCHDOG: &str = r#"parent="$1"; shift
redis-server "$@" &
redis=$!
while kill -0 "$parent" 2>/dev/null && kill -0 "$redis" 2>/dev/null; do sleep 0.2; done
kill "$redis" 2>/dev/null
wait "$redis" 2>/dev/null"#;

static REDIS_URL: OnceLock<String> = OnceLock::new();

/// The URL of the Redis every test of this binary shares.
pub fn redis_url() -> String {
    REDIS_URL
        .get_or_init(|| match std::env::var(REDIS_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => start_redis_server(),
        })
        .clone()
}

/// Starts a private redis-server and returns its URL; panics with instructions when it
/// cannot, because a skipped integration test would pass without testing anything.
fn start_redis_server() -> String {
    check_installed();
    let mut failures = Vec::new();
    for attempt in 0..START_ATTEMPTS {
        let port = free_port();
        // Another process may probe the same free port and start its Redis there first;
        // a unique file name (never written: saving is off) tells ours apart.
        let identity = format!("match-it-{}-{attempt}.rdb", std::process::id());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("match-it-redis")
            .arg(std::process::id().to_string())
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().display().to_string()])
            .args(["--dbfilename", &identity])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run sh to start redis-server: {error}"));
        if wait_for_identity(port, &identity) {
            // The watchdog outlives every test; a detached thread reaps it should it end.
            std::thread::spawn(move || child.wait());
            return format!("redis://127.0.0.1:{port}");
        }
        failures.push(port);
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "redis-server did not come up on ports {failures:?} within {STARTUP_TIMEOUT:?}; \
         run `redis-server --port 6399` by hand to see why, or point {REDIS_URL_ENV} at a \
         running Redis"
    );
}

/// Fails with installation instructions when redis-server is not on PATH.
fn check_installed() {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "these tests need a real Redis, but `redis-server` is not on PATH.\n\
         Install it (Debian/Ubuntu: `sudo apt-get install redis-server`; Fedora: \
         `sudo dnf install redis`; macOS: `brew install redis`), or set {REDIS_URL_ENV}=redis://host:port \
         to use a running Redis (tests isolate themselves by key prefix, so a shared one is fine)."
    );
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap_or_else(|error| panic!("cannot bind a loopback port: {error}"));
    listener
        .local_addr()
        .unwrap_or_else(|error| panic!("bound socket has no address: {error}"))
        .port()
}

/// Whether the Redis answering on `port` before the startup timeout is the one started
/// with `identity` as its dbfilename.
fn wait_for_identity(port: u16, identity: &str) -> bool {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        match dbfilename(port) {
            Some(name) if name.contains(identity) => return true,
            // Someone else's Redis (or another server) holds the port: try another one.
            Some(_) => return false,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

/// `CONFIG GET dbfilename` over a plain socket (the async client needs a runtime, this
/// runs before one); the raw reply, or `None` while nothing answers.
fn dbfilename(port: u16) -> Option<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"CONFIG GET dbfilename\r\n").ok()?;
    let mut reply = [0_u8; 256];
    let read = stream.read(&mut reply).ok()?;
    let reply = String::from_utf8_lossy(reply.get(..read)?).into_owned();
    // A Redis still loading answers an error; ask again.
    (!reply.starts_with("-LOADING")).then_some(reply)
}
