//! The `match-server` binary: reads the config, connects to Redis, serves until SIGTERM or
//! ctrl-c, then shuts down gracefully. `match-server token --player UUID` mints a player
//! token for local use instead.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use match_server::allocator::agones::AgonesAllocator;
use match_server::allocator::{Allocator, RegistryAllocator};
use match_server::auth;
use match_server::clock::{Clock, RandomIds, SystemClock};
use match_server::config::{AllocatorKind, ENV_PREFIX, Settings};
use match_server::keys::Keys;
use match_server::matchmaker::Deps;
use match_server::probe::NoProbe;
use match_server::server;
use match_server::store::redis_store::RedisStore;

/// WebSocket matchmaking service on Redis. Without a subcommand it serves.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    command: Option<Command>,
    /// How to serve.
    #[command(flatten)]
    serve: ServeArgs,
}

/// The options of the serve command (the default).
#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config file; built-in defaults (two modes, Normal_1v1 and Normal_2v2) otherwise.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Address to listen on (overrides the config and MATCH_SERVER_BIND).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Redis URL (overrides the config and MATCH_SERVER_REDIS_URL).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Dev mode for local demos: accept unauthenticated clients (auth.mode = "dev").
    /// Never in production.
    #[arg(long)]
    dev: bool,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Print a player token (HS256 JWT) for local use.
    Token(TokenArgs),
}

/// The options of `token`.
#[derive(Args, Debug)]
struct TokenArgs {
    /// The player the token is for.
    #[arg(long, value_name = "UUID")]
    player: uuid::Uuid,
    /// Seconds the token stays valid.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TOKEN_TTL_SECS)]
    ttl_secs: u64,
    /// The shared secret; else MATCH_SERVER_AUTH__SECRET, else the config file's.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// TOML config file to read auth.secret from.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

/// Lifetime of a minted token unless `--ttl-secs` says otherwise: one hour.
const DEFAULT_TOKEN_TTL_SECS: u64 = 3_600;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Token(args)) = &cli.command {
        return match mint_token(args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("match-server token: {error}");
                ExitCode::from(2)
            }
        };
    }
    init_tracing();
    let settings = match load_settings(&cli.serve) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("match-server: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("match-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("match-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` picks the level (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The config file's text, or none.
fn read_config(path: Option<&std::path::Path>) -> Result<String, String> {
    match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read config file {}: {error}", path.display())),
        None => Ok(String::new()),
    }
}

/// File (or defaults), then environment, then command-line flags, validated once: the
/// flags are applied as the environment variables they stand for.
fn load_settings(cli: &ServeArgs) -> Result<Settings, String> {
    let text = read_config(cli.config.as_deref())?;
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    if let Some(bind) = &cli.bind {
        env.insert(format!("{ENV_PREFIX}BIND"), bind.clone());
    }
    if let Some(redis) = &cli.redis {
        env.insert(format!("{ENV_PREFIX}REDIS_URL"), redis.clone());
    }
    if cli.dev {
        env.insert(format!("{ENV_PREFIX}AUTH__MODE"), "dev".to_owned());
    }
    let settings = Settings::from_toml(&text, &env).map_err(|error| error.to_string())?;
    if settings.auth.mode == match_server::config::AuthMode::Dev {
        tracing::warn!("auth mode dev: unauthenticated clients are accepted; never in production");
    }
    Ok(settings)
}

/// The token `match-server token` prints: the secret from the flag, the environment or
/// the config file; the expiry from the system clock (through the Clock seam).
fn mint_token(args: &TokenArgs) -> Result<String, String> {
    let text = read_config(args.config.as_deref())?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = Settings::parse_toml(&text, &env).map_err(|error| error.to_string())?;
    let secret = args
        .secret
        .clone()
        .or(settings.auth.secret)
        .ok_or_else(|| {
            format!(
                "no secret: pass --secret, set {ENV_PREFIX}AUTH__SECRET, or name a --config \
                 file with auth.secret"
            )
        })?;
    let now_ms = SystemClock
        .now_unix_ms()
        .map_err(|error| format!("cannot read the clock: {error}"))?;
    let exp_s = (now_ms / 1_000).saturating_add(args.ttl_secs);
    auth::mint(&secret, args.player, exp_s).map_err(|error| error.to_string())
}

async fn serve(settings: Settings) -> Result<(), String> {
    let store = RedisStore::connect(
        &settings.redis_url,
        settings.timing.redis_command_timeout_ms,
    )
    .await
    .map_err(|error| format!("cannot connect to Redis at {}: {error}", settings.redis_url))?;
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", settings.bind))?;
    let store = Arc::new(store);
    let ids = Arc::new(RandomIds);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let allocator: Arc<dyn Allocator> = match settings.allocator.kind {
        AllocatorKind::Registry => {
            let registry = Arc::new(RegistryAllocator::new(
                store.clone(),
                ids.clone(),
                clock.clone(),
                Keys::new(&settings.key_prefix),
                &settings.allocator,
            ));
            let follower = registry.clone();
            tokio::spawn(async move { follower.follow_registry().await });
            registry
        }
        AllocatorKind::Agones => {
            let agones = &settings.allocator.agones;
            tracing::info!(url = %agones.url, namespace = %agones.namespace, "allocating game servers from Agones");
            Arc::new(AgonesAllocator::new(agones, ids.clone())?)
        }
    };
    let deps = Deps {
        store,
        clock,
        ids,
        allocator,
        probe: Arc::new(NoProbe),
    };
    let ended = server::run(listener, Arc::new(settings), deps, shutdown_signal()).await;
    if ended.clean {
        Ok(())
    } else {
        Err("shutdown timed out".to_owned())
    }
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        biased;
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
