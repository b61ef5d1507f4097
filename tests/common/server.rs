//! An in-process match-server: `server::run` on a loopback tokio listener with the
//! production seams (RedisStore, SystemClock, RandomIds, and the allocator the settings'
//! `allocator.kind` names).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use match_server::allocator::agones::AgonesAllocator;
use match_server::allocator::{Allocator, RegistryAllocator};
use match_server::clock::{Clock, Ids, RandomIds, SystemClock};
use match_server::config::{AllocatorKind, Settings};
use match_server::keys::Keys;
use match_server::matchmaker::Deps;
use match_server::probe::NoProbe;
use match_server::server::{self, Ended};
use match_server::store::Store;
use match_server::store::redis_store::RedisStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::inspect::Inspector;
use super::recording::{Recorder, RecordingStore};

/// A running instance; dropping it asks it to shut down.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The settings it runs with.
    pub settings: Arc<Settings>,
    /// Completes the shutdown future of `server::run` when sent or dropped.
    stop: Option<oneshot::Sender<()>>,
    /// The `server::run` task.
    task: Option<JoinHandle<Ended>>,
    /// The allocator's registry sweep (`follow_registry`), stopped with the instance.
    follow_task: JoinHandle<()>,
}

impl TestServer {
    /// Starts an instance with `settings` on 127.0.0.1 and an OS-chosen port, and waits
    /// until its pub/sub subscriber listens, so no notice of the test is lost to start-up.
    pub async fn start(settings: Settings) -> Self {
        Self::start_with(settings, Arc::new(SystemClock), None).await
    }

    /// Starts an instance whose clock seam is `clock` (e.g. one that fails).
    pub async fn start_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> Self {
        Self::start_with(settings, clock, None).await
    }

    /// Starts an instance whose every Redis command is recorded by the returned recorder.
    pub async fn start_recording(settings: Settings) -> (Self, Recorder) {
        let recorder = Recorder::default();
        let server =
            Self::start_with(settings, Arc::new(SystemClock), Some(recorder.clone())).await;
        (server, recorder)
    }

    /// Starts an instance on the production seams, with `clock` and, if given, a recorder
    /// of its Redis commands.
    async fn start_with(
        mut settings: Settings,
        clock: Arc<dyn Clock>,
        recorder: Option<Recorder>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("cannot bind a loopback listener: {error}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("listener has no address: {error}"));
        settings.bind = addr.to_string();
        if let Err(error) = settings.validate() {
            panic!("the test settings are invalid: {error}");
        }
        let store = super::within(
            super::WAIT,
            "connecting the server to Redis",
            RedisStore::connect(
                &settings.redis_url,
                settings.timing.redis_command_timeout_ms,
            ),
        )
        .await
        .unwrap_or_else(|error| panic!("cannot connect to Redis: {error}"));
        let mut store: Arc<dyn Store> = Arc::new(store);
        if let Some(recorder) = recorder {
            store = Arc::new(RecordingStore {
                inner: store,
                recorder,
            });
        }
        let ids: Arc<dyn Ids> = Arc::new(RandomIds);
        let (allocator, follow_task): (Arc<dyn Allocator>, JoinHandle<()>) = match settings
            .allocator
            .kind
        {
            AllocatorKind::Registry => {
                let registry = Arc::new(RegistryAllocator::new(
                    store.clone(),
                    ids.clone(),
                    clock.clone(),
                    Keys::new(&settings.key_prefix),
                    &settings.allocator,
                ));
                let follower = registry.clone();
                let task = tokio::spawn(async move { follower.follow_registry().await });
                (registry, task)
            }
            AllocatorKind::Agones => (
                Arc::new(
                    AgonesAllocator::new(&settings.allocator.agones, ids.clone())
                        .unwrap_or_else(|error| panic!("cannot set up the Agones client: {error}")),
                ),
                tokio::spawn(async {}),
            ),
        };
        let deps = Deps {
            store,
            clock,
            ids,
            allocator,
            probe: Arc::new(NoProbe),
        };
        let settings = Arc::new(settings);
        let probe = Inspector::connect_to(&settings.redis_url, &settings.key_prefix).await;
        let mode = settings
            .modes
            .first()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let listening_before = probe.probe_subscribers(&mode).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A send and a dropped sender both mean: shut down.
            let _ = stopped.await;
        };
        let task = tokio::spawn(server::run(listener, settings.clone(), deps, shutdown));
        super::eventually("the new instance subscribes to its notices", || async {
            (probe.probe_subscribers(&mode).await > listening_before).then_some(())
        })
        .await;
        Self {
            addr,
            settings,
            stop: Some(stop),
            task: Some(task),
            follow_task,
        }
    }

    /// Shuts down gracefully and reports how it ended, within the shutdown timeout plus a
    /// margin.
    pub async fn shutdown(mut self) -> Ended {
        drop(self.stop.take());
        self.follow_task.abort();
        let limit = Duration::from_millis(self.settings.timing.shutdown_timeout_ms) + super::WAIT;
        let task = self
            .task
            .take()
            .unwrap_or_else(|| panic!("shut down twice"));
        super::within(limit, "the server shutting down", task)
            .await
            .unwrap_or_else(|error| panic!("the server task failed: {error}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        self.follow_task.abort();
    }
}
