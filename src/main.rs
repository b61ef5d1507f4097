//! The `match-server` binary: reads the config, connects to Redis, serves until SIGTERM or
//! ctrl-c, then shuts down gracefully.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use match_server::allocator::RegistryAllocator;
use match_server::clock::{RandomIds, SystemClock};
use match_server::config::Settings;
use match_server::keys::Keys;
use match_server::matchmaker::Deps;
use match_server::server;
use match_server::store::redis_store::RedisStore;

/// WebSocket matchmaking service on Redis.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML config file; built-in defaults (two modes, Normal_1v1 and Normal_2v2) otherwise.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Address to listen on (overrides the config and MATCH_SERVER_BIND).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Redis URL (overrides the config and MATCH_SERVER_REDIS_URL).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let settings = match load_settings(&cli) {
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

/// File (or defaults), then environment, then command-line flags.
fn load_settings(cli: &Cli) -> Result<Settings, String> {
    let text = match &cli.config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read config file {}: {error}", path.display()))?,
        None => String::new(),
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut settings = Settings::from_toml(&text, &env).map_err(|error| error.to_string())?;
    if let Some(bind) = &cli.bind {
        settings.bind.clone_from(bind);
    }
    if let Some(redis) = &cli.redis {
        settings.redis_url.clone_from(redis);
    }
    Ok(settings)
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
    let allocator = RegistryAllocator::new(
        store.clone(),
        ids.clone(),
        Keys::new(&settings.key_prefix),
        &settings.allocator,
    );
    let deps = Deps {
        store,
        clock: Arc::new(SystemClock),
        ids,
        allocator: Arc::new(allocator),
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
