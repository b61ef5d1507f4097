//! The real `match-server` binary as a child process, configured for one test.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use match_server::config::Settings;
use tempfile::NamedTempFile;

use super::TestEnv;
use super::redis_server::free_port;

/// The binary running as a child process; killed on drop if a test failed before it exited.
pub struct Binary {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stderr (the service logs), printed when a test fails.
    log: NamedTempFile,
    /// Kept so the file outlives the process.
    _config: NamedTempFile,
}

/// The binary's command with no `MATCH_SERVER_*` variable inherited from the test
/// process: only what a test passes may configure the process under test.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_match-server"));
    for (name, _) in std::env::vars() {
        if name.starts_with("MATCH_SERVER_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs the binary with `args` to its end (it must end within [`super::WAIT`]); its exit
/// status, stdout and stderr.
pub async fn run_to_end(args: &[&str]) -> std::process::Output {
    let mut child = command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the match-server binary");
    let deadline = tokio::time::Instant::now() + super::WAIT;
    while child.try_wait().unwrap().is_none() {
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!(
                "match-server {args:?} still running after {:?}",
                super::WAIT
            );
        }
        tokio::time::sleep(super::POLL).await;
    }
    child.wait_with_output().unwrap()
}

impl Binary {
    /// Starts `match-server --config <file> --bind 127.0.0.1:<free port> --redis <url>` and
    /// waits until `/healthz` answers.
    pub async fn start(settings: &Settings, redis_url: &str) -> Self {
        Self::start_with_args(settings, redis_url, &[]).await
    }

    /// [`Binary::start`] with `extra` arguments (e.g. `--dev`).
    pub async fn start_with_args(settings: &Settings, redis_url: &str, extra: &[&str]) -> Self {
        let mut config = NamedTempFile::new().unwrap();
        config
            .write_all(toml::to_string(settings).unwrap().as_bytes())
            .unwrap();
        let log = NamedTempFile::new().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = command();
        command
            .arg("--config")
            .arg(config.path())
            .args(["--bind", &addr.to_string()])
            .args(["--redis", redis_url])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        let child = command
            .spawn()
            .expect("cannot start the match-server binary");
        let mut binary = Self {
            child,
            addr,
            log,
            _config: config,
        };
        binary.wait_healthy().await;
        binary
    }

    /// Polls `/healthz` until it answers `ok`; fails early if the process exits.
    async fn wait_healthy(&mut self) {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "match-server exited at start-up ({status}):\n{}",
                    self.log()
                );
            }
            if let Ok((200, body)) = super::http::get(self.addr, "/healthz").await {
                assert_eq!(body.trim(), "ok");
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "match-server not healthy within {:?}:\n{}",
                super::WAIT,
                self.log()
            );
            tokio::time::sleep(super::POLL).await;
        }
    }

    /// Sends SIGTERM: the graceful shutdown.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Sends SIGKILL: a crash, nothing is cleaned up.
    pub fn kill(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "match-server still running {limit:?} after SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(super::POLL).await;
        }
    }

    /// The service logs so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- match-server log ---\n{}", self.log());
        }
    }
}

/// Settings for the binary: the test's prefixes and short timings; `bind` and `redis_url`
/// are deliberately wrong so the test also shows that `--bind` and `--redis` win.
pub fn binary_settings(env: &TestEnv) -> Settings {
    let mut settings = env.settings();
    settings.bind = "127.0.0.1:1".to_owned();
    settings.redis_url = "redis://127.0.0.1:1".to_owned();
    settings
}
