//! Settings: a TOML file, overridden by `MATCH_SERVER_*` environment variables, validated
//! once at start-up so a bad value is a clear error instead of a surprise at run time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits;

/// Everything the service can be configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP/WebSocket listener binds, `host:port`.
    pub bind: String,
    /// Redis connection URL.
    pub redis_url: String,
    /// Prefix of every matchmaking key; contains a `{hash tag}` so all keys share a slot.
    pub key_prefix: String,
    /// The game modes players can queue for.
    pub modes: Vec<GameMode>,
    /// Timeouts and intervals.
    pub timing: Timing,
    /// Bounds on what one instance and one client may use.
    pub limits: Limits,
    /// Where dedicated game servers are found.
    pub allocator: AllocatorSettings,
    /// How players prove who they are.
    pub auth: AuthSettings,
}

/// One game mode: its name on the wire and how many players make a match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameMode {
    /// The name clients send as `game_mode`.
    pub name: String,
    /// Players per match.
    pub players: u32,
}

/// Timeouts and intervals, all in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Safety-net period of the match attempt (an enqueue that completes a group triggers
    /// one at once).
    pub match_interval_ms: u64,
    /// How long players of a loading session have to report `loading_complete`.
    pub loading_timeout_ms: u64,
    /// How long a game server allocation may take.
    pub allocation_timeout_ms: u64,
    /// Period of the stale loading session and dead entry sweeps.
    pub sweep_interval_ms: u64,
    /// How long a player's entry outlives its session if nobody renews it (instance crash).
    pub lease_ttl_ms: u64,
    /// Period of the lease renewal; well under `lease_ttl_ms`.
    pub lease_renew_interval_ms: u64,
    /// Period at which a waiting session compares its state with Redis.
    pub resync_interval_ms: u64,
    /// Time-to-live of the per-mode match lock.
    pub lock_ttl_ms: u64,
    /// Bound on each Redis command.
    pub redis_command_timeout_ms: u64,
    /// Period of WebSocket pings.
    pub heartbeat_interval_ms: u64,
    /// A connection silent for this long (no frame, no pong) is closed.
    pub idle_timeout_ms: u64,
    /// Bound on graceful shutdown.
    pub shutdown_timeout_ms: u64,
    /// First delay before reconnecting the pub/sub subscriber; doubles up to ten times.
    pub subscriber_retry_ms: u64,
}

/// Bounds on one instance and one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent connections per instance; more get HTTP 503.
    pub max_connections: usize,
    /// Largest accepted frame; a larger one closes that connection with code 1009.
    pub max_frame_bytes: usize,
    /// Sustained client messages per second per connection.
    pub messages_per_second: u32,
    /// Burst of client messages allowed above the sustained rate.
    pub message_burst: u32,
    /// Longest queue per mode; further enqueues get `queue_full`.
    pub max_queue_len: u64,
}

/// How players prove who they are at the WebSocket upgrade.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `required` (production): a signed player token at the upgrade; `dev`: none.
    pub mode: AuthMode,
    /// The HS256 shared secret the tokens are signed with, at least
    /// [`MIN_SECRET_BYTES`](crate::auth::MIN_SECRET_BYTES) long. Best supplied by the
    /// `MATCH_SERVER_AUTH__SECRET` environment variable, not the file.
    pub secret: Option<String>,
}

/// Whether the upgrade requires a player token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A valid token is required; a connection acts for the token's player only.
    Required,
    /// For local demos: no token; the first `enqueue` binds the connection to its player.
    Dev,
}

impl AuthSettings {
    /// Dev mode: unauthenticated clients, no secret (local demos, the simulation).
    pub fn dev() -> Self {
        Self {
            mode: AuthMode::Dev,
            secret: None,
        }
    }

    /// Required mode with `secret`.
    pub fn required(secret: &str) -> Self {
        Self {
            mode: AuthMode::Required,
            secret: Some(secret.to_owned()),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let secret_len = self.secret.as_ref().map_or(0, String::len);
        if self.mode == AuthMode::Required && secret_len < crate::auth::MIN_SECRET_BYTES {
            let problem = if self.secret.is_none() {
                "is missing"
            } else {
                "is too short"
            };
            return Err(ConfigError::Invalid(format!(
                "auth.secret {problem}: auth.mode \"required\" needs a shared secret of at \
                 least {} bytes to verify player tokens. Set MATCH_SERVER_AUTH__SECRET (for \
                 example to the output of `openssl rand -base64 48`), or start with --dev \
                 (auth.mode = \"dev\") to accept unauthenticated clients in a local demo",
                crate::auth::MIN_SECRET_BYTES
            )));
        }
        Ok(())
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::Required,
            secret: None,
        }
    }
}

impl std::fmt::Debug for AuthSettings {
    /// Never prints the secret, only whether there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = self.secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthSettings")
            .field("mode", &self.mode)
            .field("secret", &secret)
            .finish()
    }
}

/// Where dedicated game servers are registered and how they are called.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllocatorSettings {
    /// Which backend allocates game servers: the Redis registry (default) or Agones.
    pub kind: AllocatorKind,
    /// Key prefix of the registry: `dedicated_server:<name>` holds `{"address","status"}`.
    pub registry_prefix: String,
    /// How long an allocation's claim of a server slot (its `{prefix}:fleet:claim:<token>`
    /// key) holds the slot: until then a registration that does not show the new session
    /// yet cannot free the slot again. The setting keeps its name from the older
    /// `{prefix}:claim:<server>` reservation for compatibility with existing configurations.
    pub claim_ttl_ms: u64,
    /// Pause between two bounded steps of the sweep that keeps the fleet index in step with
    /// registrations it was not told about (legacy servers flipping their own `status`).
    pub sweep_interval_ms: u64,
    /// The Agones allocator service, used when `kind = "agones"`.
    pub agones: crate::allocator::agones::settings::AgonesSettings,
}

/// The game server allocation backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocatorKind {
    /// Game servers register in Redis (`dedicated_server:<name>`) and answer
    /// `POST /session/create`.
    #[default]
    Registry,
    /// The Agones allocator service (`POST /gameserverallocation`) picks a Ready GameServer.
    Agones,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "{mm}".to_owned(),
            modes: vec![
                GameMode {
                    name: "Normal_1v1".to_owned(),
                    players: 2,
                },
                GameMode {
                    name: "Normal_2v2".to_owned(),
                    players: 4,
                },
            ],
            timing: Timing::default(),
            limits: Limits::default(),
            allocator: AllocatorSettings::default(),
            auth: AuthSettings::default(),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            match_interval_ms: 1_000,
            loading_timeout_ms: 30_000,
            allocation_timeout_ms: 5_000,
            sweep_interval_ms: 1_000,
            lease_ttl_ms: 15_000,
            lease_renew_interval_ms: 5_000,
            resync_interval_ms: 5_000,
            lock_ttl_ms: 5_000,
            redis_command_timeout_ms: 2_000,
            heartbeat_interval_ms: 15_000,
            idle_timeout_ms: 45_000,
            shutdown_timeout_ms: 10_000,
            subscriber_retry_ms: 100,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_frame_bytes: 4_096,
            messages_per_second: 10,
            message_burst: crate::limits::DEFAULT_MESSAGE_BURST,
            max_queue_len: 100_000,
        }
    }
}

impl Default for AllocatorSettings {
    fn default() -> Self {
        Self {
            kind: AllocatorKind::Registry,
            registry_prefix: "dedicated_server:".to_owned(),
            claim_ttl_ms: 30_000,
            sweep_interval_ms: 1_000,
            agones: crate::allocator::agones::settings::AgonesSettings::default(),
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that failed.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML (after environment overrides) does not describe valid settings.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of its allowed range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The prefix of environment overrides: `MATCH_SERVER_BIND`, `MATCH_SERVER_TIMING__LOADING_TIMEOUT_MS`.
pub const ENV_PREFIX: &str = "MATCH_SERVER_";

impl Settings {
    /// Parses TOML text, applies `MATCH_SERVER_*` overrides from `env`, and validates.
    pub fn from_toml(text: &str, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let settings = Self::parse_toml(text, env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses TOML text and applies `MATCH_SERVER_*` overrides from `env`, without the
    /// range checks (for tools that need only part of the settings, like `token`).
    pub fn parse_toml(text: &str, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        apply_env_overrides(&mut table, env)?;
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))
    }

    /// The mode called `name`, if configured.
    pub fn mode(&self, name: &str) -> Option<&GameMode> {
        self.modes.iter().find(|mode| mode.name == name)
    }

    /// Checks every value against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_modes(&self.modes)?;
        if !self.key_prefix.contains('{') || !self.key_prefix.contains('}') {
            return Err(ConfigError::Invalid(format!(
                "key_prefix {:?} must contain a {{hash tag}}",
                self.key_prefix
            )));
        }
        self.timing.validate()?;
        self.limits.validate()?;
        self.allocator.validate()?;
        self.auth.validate()
    }
}

/// Shortest pause between two sweep steps of the fleet index: a tighter loop would turn the
/// bounded sweep into a busy scan of the keyspace.
pub const MIN_SWEEP_INTERVAL_MS: u64 = 10;

impl AllocatorSettings {
    /// Checks the ranges the allocator relies on.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.claim_ttl_ms == 0 {
            return Err(ConfigError::Invalid(
                "allocator.claim_ttl_ms must be positive".into(),
            ));
        }
        if self.sweep_interval_ms < MIN_SWEEP_INTERVAL_MS {
            return Err(ConfigError::Invalid(format!(
                "allocator.sweep_interval_ms must be at least {MIN_SWEEP_INTERVAL_MS}"
            )));
        }
        match self.kind {
            AllocatorKind::Registry => Ok(()),
            AllocatorKind::Agones => self.agones.validate().map_err(ConfigError::Invalid),
        }
    }
}

fn validate_modes(modes: &[GameMode]) -> Result<(), ConfigError> {
    if modes.is_empty() {
        return Err(ConfigError::Invalid(
            "at least one game mode is required".into(),
        ));
    }
    for (index, mode) in modes.iter().enumerate() {
        let name_ok = !mode.name.is_empty()
            && mode.name.len() <= limits::MAX_MODE_NAME_BYTES
            && mode
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(ConfigError::Invalid(format!(
                "mode name {:?} must be 1-{} characters of A-Z a-z 0-9 _ -",
                mode.name,
                limits::MAX_MODE_NAME_BYTES
            )));
        }
        if mode.players == 0 || mode.players > limits::MAX_PLAYERS_PER_MATCH {
            return Err(ConfigError::Invalid(format!(
                "mode {} must have 1-{} players",
                mode.name,
                limits::MAX_PLAYERS_PER_MATCH
            )));
        }
        if modes
            .iter()
            .take(index)
            .any(|other| other.name == mode.name)
        {
            return Err(ConfigError::Invalid(format!(
                "mode {} is defined twice",
                mode.name
            )));
        }
    }
    Ok(())
}

impl Timing {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("match_interval_ms", self.match_interval_ms),
            ("loading_timeout_ms", self.loading_timeout_ms),
            ("allocation_timeout_ms", self.allocation_timeout_ms),
            ("sweep_interval_ms", self.sweep_interval_ms),
            ("lease_ttl_ms", self.lease_ttl_ms),
            ("lease_renew_interval_ms", self.lease_renew_interval_ms),
            ("resync_interval_ms", self.resync_interval_ms),
            ("lock_ttl_ms", self.lock_ttl_ms),
            ("redis_command_timeout_ms", self.redis_command_timeout_ms),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms),
            ("subscriber_retry_ms", self.subscriber_retry_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Invalid(format!(
                "timing.{name} must be greater than 0"
            )));
        }
        if self.lease_renew_interval_ms.saturating_mul(2) > self.lease_ttl_ms {
            return Err(ConfigError::Invalid(
                "timing.lease_renew_interval_ms must be at most half of lease_ttl_ms".into(),
            ));
        }
        if self.heartbeat_interval_ms >= self.idle_timeout_ms {
            return Err(ConfigError::Invalid(
                "timing.heartbeat_interval_ms must be less than idle_timeout_ms".into(),
            ));
        }
        Ok(())
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 || self.max_queue_len == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_connections and max_queue_len must be greater than 0".into(),
            ));
        }
        if self.max_frame_bytes < limits::MIN_FRAME_BYTES {
            return Err(ConfigError::Invalid(format!(
                "limits.max_frame_bytes must be at least {}",
                limits::MIN_FRAME_BYTES
            )));
        }
        if self.messages_per_second == 0 || self.message_burst == 0 {
            return Err(ConfigError::Invalid(
                "limits.messages_per_second and message_burst must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

/// Writes each `MATCH_SERVER_A__B` variable into `table` at path `a.b`. Integers and
/// booleans keep their type; everything else is a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let Some((last, parents)) = parts.split_last() else {
            continue;
        };
        let mut current = &mut *table;
        for part in parents {
            let entry = current
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry
                .as_table_mut()
                .ok_or_else(|| ConfigError::Parse(format!("{name}: {part} is not a section")))?;
        }
        let value = if TEXT_ONLY_KEYS.contains(&path.to_ascii_lowercase().as_str()) {
            toml::Value::String(raw.clone())
        } else {
            env_value(raw)
        };
        current.insert(last.clone(), value);
    }
    Ok(())
}

/// Override paths (`SECTION__KEY`, lower case) whose value is always taken as text: a
/// secret of digits is still a string.
const TEXT_ONLY_KEYS: &[&str] = &["auth__secret"];

fn env_value(raw: &str) -> toml::Value {
    if let Ok(number) = raw.parse::<i64>() {
        toml::Value::Integer(number)
    } else if let Ok(flag) = raw.parse::<bool>() {
        toml::Value::Boolean(flag)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn no_env() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// The environment of a production start: only the secret.
    fn secret_env() -> BTreeMap<String, String> {
        BTreeMap::from([("MATCH_SERVER_AUTH__SECRET".to_owned(), SECRET.to_owned())])
    }

    /// Goal: the shipped config file and the built-in defaults describe the same service,
    /// a production one (auth required, the secret left to the environment).
    #[test]
    fn shipped_config_equals_defaults() {
        let shipped = include_str!("../config/match-server.toml");
        let parsed = Settings::parse_toml(shipped, &no_env()).unwrap();
        assert_eq!(parsed, Settings::default());
        assert_eq!(parsed.auth.mode, AuthMode::Required);
        assert_eq!(parsed.auth.secret, None, "no secret in the shipped file");
        let started = Settings::from_toml(shipped, &secret_env()).unwrap();
        assert_eq!(started.auth, AuthSettings::required(SECRET));
    }

    /// Goal: auth mode "required" without a secret, or with one under 32 bytes, is refused
    /// at start-up with a message saying how to set one or how to use dev mode; dev mode
    /// needs none; a secret of digits stays text.
    #[test]
    fn required_auth_needs_a_long_secret() {
        for env in [
            no_env(),
            BTreeMap::from([("MATCH_SERVER_AUTH__SECRET".to_owned(), "short".to_owned())]),
        ] {
            let error = Settings::from_toml("", &env).unwrap_err().to_string();
            assert!(error.contains("auth.secret"), "{error}");
            assert!(error.contains("MATCH_SERVER_AUTH__SECRET"), "{error}");
            assert!(error.contains("--dev"), "{error}");
        }
        let dev = Settings::from_toml("[auth]\nmode = \"dev\"", &no_env()).unwrap();
        assert_eq!(dev.auth, AuthSettings::dev());
        let digits = "1".repeat(40);
        let env = BTreeMap::from([("MATCH_SERVER_AUTH__SECRET".to_owned(), digits.clone())]);
        let settings = Settings::from_toml("", &env).unwrap();
        assert_eq!(settings.auth.secret, Some(digits));
    }

    /// Goal: the secret never shows in a debug print of the settings.
    #[test]
    fn debug_output_hides_the_secret() {
        let settings = Settings::from_toml("", &secret_env()).unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    /// Goal: environment variables override file values, nested sections included.
    #[test]
    fn env_overrides_file_values() {
        let env = BTreeMap::from([
            ("MATCH_SERVER_BIND".to_owned(), "0.0.0.0:9000".to_owned()),
            (
                "MATCH_SERVER_TIMING__LOADING_TIMEOUT_MS".to_owned(),
                "1234".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
            ("MATCH_SERVER_AUTH__SECRET".to_owned(), SECRET.to_owned()),
        ]);
        let settings = Settings::from_toml("", &env).unwrap();
        assert_eq!(settings.bind, "0.0.0.0:9000");
        assert_eq!(settings.timing.loading_timeout_ms, 1234);
    }

    /// Goal: the Agones backend is chosen and configured from the file (selectors
    /// included) or the environment; without a url it is refused at start-up; the default
    /// stays the registry.
    #[test]
    fn agones_backend_from_file_and_env() {
        use crate::allocator::agones::settings::GameServerState;
        assert_eq!(Settings::default().allocator.kind, AllocatorKind::Registry);
        let file = "[allocator]\nkind = \"agones\"\n[allocator.agones]\n\
                    url = \"http://agones-allocator:8000\"\nnamespace = \"games\"\n\
                    [[allocator.agones.selectors]]\n\
                    match_labels = { \"agones.dev/fleet\" = \"arena\" }\n\
                    game_server_state = \"Allocated\"\n";
        let settings = Settings::from_toml(file, &secret_env()).unwrap();
        assert_eq!(settings.allocator.kind, AllocatorKind::Agones);
        let agones = &settings.allocator.agones;
        assert_eq!(agones.namespace, "games");
        assert_eq!(agones.selectors.len(), 1);
        assert_eq!(
            agones.selectors[0].game_server_state,
            GameServerState::Allocated
        );
        let mut env = secret_env();
        env.insert("MATCH_SERVER_ALLOCATOR__KIND".into(), "agones".into());
        let error = Settings::from_toml("", &env).unwrap_err().to_string();
        assert!(error.contains("allocator.agones.url"), "{error}");
        env.insert(
            "MATCH_SERVER_ALLOCATOR__AGONES__URL".into(),
            "http://10.0.0.9:8000".into(),
        );
        env.insert(
            "MATCH_SERVER_ALLOCATOR__AGONES__UNALLOCATED_STATUS".into(),
            "503".into(),
        );
        let settings = Settings::from_toml("", &env).unwrap();
        assert_eq!(settings.allocator.agones.url, "http://10.0.0.9:8000");
        assert_eq!(settings.allocator.agones.unallocated_status, 503);
    }

    /// Goal: each kind of bad value is refused with a message naming it.
    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("modes = []", "at least one game mode"),
            ("[[modes]]\nname = \"a b\"\nplayers = 2", "mode name"),
            ("[[modes]]\nname = \"x\"\nplayers = 0", "1-"),
            (
                "[[modes]]\nname = \"x\"\nplayers = 2\n[[modes]]\nname = \"x\"\nplayers = 2",
                "twice",
            ),
            ("key_prefix = \"mm\"", "hash tag"),
            ("[timing]\nloading_timeout_ms = 0", "loading_timeout_ms"),
            (
                "[timing]\nlease_ttl_ms = 1000\nlease_renew_interval_ms = 900",
                "half",
            ),
            ("[limits]\nmax_frame_bytes = 3", "max_frame_bytes"),
            ("colour = \"red\"", "unknown field"),
            ("bind = [", "invalid config"),
        ];
        for (text, needle) in cases {
            let error = Settings::from_toml(text, &secret_env())
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{text:?} gave {error:?}");
        }
    }
}
