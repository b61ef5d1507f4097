//! The command line, and its validation into a [`Plan`]: every address is checked to be
//! loopback before anything connects anywhere.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::loopback::{LoopbackError, loopback_addr};
use crate::player::Target;

/// Default Redis port when a URL names none.
const REDIS_DEFAULT_PORT: u16 = 6379;
/// Default WebSocket port when a URL names none.
const WS_DEFAULT_PORT: u16 = 80;

/// Drives N WebSocket players through enqueue -> start_loading -> loading_complete ->
/// match_found against match-server instances on this machine, and verifies that no player
/// was duplicated or lost.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
pub struct Cli {
    /// Comma-separated WebSocket URLs of the instances; players are spread round-robin.
    #[arg(long, value_delimiter = ',', required = true, value_name = "URLS")]
    pub servers: Vec<String>,
    /// Players to start in total (rounded down to whole matches).
    #[arg(long, value_name = "N")]
    pub players: Option<usize>,
    /// Stop starting players after this many seconds.
    #[arg(long = "duration", value_name = "S")]
    pub duration_s: Option<f64>,
    /// Players started per second, open loop; 0 starts them as fast as `--concurrency` allows.
    #[arg(long = "rate", default_value_t = 0.0, value_name = "P")]
    pub rate_per_s: f64,
    /// Most players in flight at once (bounds sockets; a full window delays starts).
    #[arg(long, default_value_t = 2_000, value_name = "N")]
    pub concurrency: usize,
    /// Game mode to enqueue for.
    #[arg(long, default_value = "Normal_1v1")]
    pub mode: String,
    /// Players per match of the mode; derived from names like `X_2v2` when omitted.
    #[arg(long, value_name = "N")]
    pub players_per_match: Option<usize>,
    /// Redis URL: INFO commandstats before and after, and the clean-afterwards check.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Key prefix of the service (its `key_prefix`).
    #[arg(long, default_value = "{mm}")]
    pub key_prefix: String,
    /// Registry prefix of the game servers (the service's `allocator.registry_prefix`).
    #[arg(long, default_value = "dedicated_server:")]
    pub registry_prefix: String,
    /// Run a stub game server on this loopback address (port 0 picks one) and register it.
    #[arg(long, value_name = "ADDR")]
    pub stub_gs: Option<String>,
    /// How many `dedicated_server:*` entries point at the stub.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub stub_gs_servers: usize,
    /// A player not matched this long after its start counts as lost.
    #[arg(long = "player-timeout", default_value_t = 30.0, value_name = "S")]
    pub player_timeout_s: f64,
    /// How long to wait after the last player for the server to clean Redis up.
    #[arg(long = "settle-timeout", default_value_t = 10.0, value_name = "S")]
    pub settle_timeout_s: f64,
    /// Tap Redis with MONITOR to split client commands from script-inner ones (slows Redis:
    /// for calibration runs, not timed ones). Needs --redis.
    #[arg(long)]
    pub monitor: bool,
    /// Runtime worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The servers' auth secret: every player connects with a token for its own id, signed
    /// with it (auth mode "required", the production path). Without it players send no
    /// token, which only servers in dev mode accept.
    #[arg(
        long,
        env = "MATCH_SERVER_AUTH__SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub token_secret: Option<String>,
}

/// Why the command line cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// An address is not loopback or malformed.
    #[error(transparent)]
    Address(#[from] LoopbackError),
    /// A combination or value of options is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// A validated run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The instances.
    pub targets: Vec<Target>,
    /// Players to start, a whole number of matches; `None` when only the duration limits.
    pub players: Option<usize>,
    /// When to stop starting players.
    pub duration: Option<Duration>,
    /// Players per second; 0 for as fast as possible.
    pub rate_per_s: f64,
    /// Most players in flight.
    pub concurrency: usize,
    /// Game mode.
    pub mode: String,
    /// Players per match.
    pub players_per_match: usize,
    /// Redis URL, checked to be loopback.
    pub redis_url: Option<String>,
    /// Redis socket address for the MONITOR tap, when asked for.
    pub monitor: Option<SocketAddr>,
    /// Service key prefix.
    pub key_prefix: String,
    /// Registry prefix.
    pub registry_prefix: String,
    /// Where the stub game server binds.
    pub stub_gs: Option<SocketAddr>,
    /// Registry entries for the stub.
    pub stub_gs_servers: usize,
    /// Per-player deadline.
    pub player_timeout: Duration,
    /// Clean-up wait.
    pub settle_timeout: Duration,
    /// The secret player tokens are signed with; `None`: no tokens (dev-mode servers).
    pub token_secret: Option<String>,
}

/// Players per match from a mode name such as `Normal_1v1` (2) or `Ranked_2v2` (4).
pub fn players_from_mode_name(mode: &str) -> Option<usize> {
    let suffix = mode.rsplit('_').next()?;
    let (left, right) = suffix.split_once('v')?;
    let left: usize = left.parse().ok()?;
    let right: usize = right.parse().ok()?;
    left.checked_add(right)
}

fn seconds(name: &str, value: f64) -> Result<Duration, PlanError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| PlanError::Invalid(format!("{name} must be a positive number of seconds")))
}

impl Cli {
    /// Validates the options into a plan.
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let targets = self
            .servers
            .iter()
            .map(|url| {
                let addr = loopback_addr("--servers", url, Some(WS_DEFAULT_PORT))?;
                Ok(Target {
                    url: url.clone(),
                    addr,
                })
            })
            .collect::<Result<Vec<_>, PlanError>>()?;
        if targets.is_empty() {
            return Err(PlanError::Invalid("--servers names no server".into()));
        }
        let (redis_url, redis_addr) = match &self.redis {
            Some(url) => {
                let addr = loopback_addr("--redis", url, Some(REDIS_DEFAULT_PORT))?;
                (Some(url.clone()), Some(addr))
            }
            None => (None, None),
        };
        if self.monitor && redis_addr.is_none() {
            return Err(PlanError::Invalid("--monitor needs --redis".into()));
        }
        let monitor = redis_addr.filter(|_| self.monitor);
        let stub_gs = match &self.stub_gs {
            Some(addr) if redis_url.is_none() => {
                return Err(PlanError::Invalid(format!(
                    "--stub-gs {addr} needs --redis to register the stub"
                )));
            }
            Some(addr) => Some(loopback_addr("--stub-gs", addr, None)?),
            None => None,
        };
        let players_per_match = self
            .players_per_match
            .or_else(|| players_from_mode_name(&self.mode))
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                PlanError::Invalid(format!(
                    "cannot tell the players per match of {}; pass --players-per-match",
                    self.mode
                ))
            })?;
        let players = self.players.map(|n| n - n % players_per_match);
        if players == Some(0) {
            return Err(PlanError::Invalid(format!(
                "--players must be at least one match ({players_per_match})"
            )));
        }
        let duration = self
            .duration_s
            .map(|s| seconds("--duration", s))
            .transpose()?;
        if players.is_none() && duration.is_none() {
            return Err(PlanError::Invalid(
                "give --players or --duration (or both)".into(),
            ));
        }
        if !(self.rate_per_s >= 0.0 && self.rate_per_s.is_finite()) {
            return Err(PlanError::Invalid("--rate must be 0 or positive".into()));
        }
        if self.concurrency == 0 {
            return Err(PlanError::Invalid("--concurrency must be positive".into()));
        }
        if let Some(secret) = &self.token_secret
            && secret.len() < match_server::auth::MIN_SECRET_BYTES
        {
            return Err(PlanError::Invalid(format!(
                "--token-secret must be at least {} bytes, as the servers require",
                match_server::auth::MIN_SECRET_BYTES
            )));
        }
        Ok(Plan {
            targets,
            players,
            duration,
            rate_per_s: self.rate_per_s,
            concurrency: self.concurrency,
            mode: self.mode.clone(),
            players_per_match,
            redis_url,
            monitor,
            key_prefix: self.key_prefix.clone(),
            registry_prefix: self.registry_prefix.clone(),
            stub_gs,
            stub_gs_servers: self.stub_gs_servers,
            player_timeout: seconds("--player-timeout", self.player_timeout_s)?,
            settle_timeout: seconds("--settle-timeout", self.settle_timeout_s)?,
            token_secret: self.token_secret.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["match-loadgen"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    /// Goal: a typical command line becomes a plan with whole matches.
    #[test]
    fn plan_from_typical_arguments() {
        let plan = cli(&[
            "--servers",
            "ws://127.0.0.1:1/ws,ws://127.0.0.1:2/ws",
            "--players",
            "101",
            "--redis",
            "redis://127.0.0.1:6390",
            "--stub-gs",
            "127.0.0.1:0",
        ])
        .plan()
        .unwrap();
        assert_eq!(plan.targets.len(), 2);
        assert_eq!(plan.players, Some(100));
        assert_eq!(plan.players_per_match, 2);
    }

    /// Goal: a non-loopback server, Redis or stub address is refused before any connection.
    #[test]
    fn outside_addresses_are_refused() {
        let cases: [&[&str]; 3] = [
            &["--servers", "ws://10.1.2.3:80/ws", "--players", "2"],
            &[
                "--servers",
                "ws://127.0.0.1:1/ws",
                "--players",
                "2",
                "--redis",
                "redis://redis.example.com:6379",
            ],
            &[
                "--servers",
                "ws://127.0.0.1:1/ws",
                "--players",
                "2",
                "--redis",
                "redis://127.0.0.1",
                "--stub-gs",
                "0.0.0.0:0",
            ],
        ];
        for args in cases {
            let error = cli(args).plan().unwrap_err();
            assert!(error.to_string().contains("not a loopback"), "{error}");
        }
    }

    /// Goal: mode names give their player count.
    #[test]
    fn players_per_match_from_names() {
        assert_eq!(players_from_mode_name("Normal_1v1"), Some(2));
        assert_eq!(players_from_mode_name("Ranked_2v2"), Some(4));
        assert_eq!(players_from_mode_name("Solo"), None);
    }
}
