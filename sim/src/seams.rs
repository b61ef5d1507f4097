//! The simulation's side of the service's seams: sim-time clock with injectable failures
//! and jumps, seeded ids, a game server allocator with faults, and a turmoil listener.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use match_server::allocator::{Allocation, AllocationError, Allocator};
use match_server::clock::{Clock, ClockError, Ids};
use match_server::server::Listener;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// Milliseconds since the unix epoch in sim time (the world's epoch plus elapsed sim time).
pub fn sim_unix_ms() -> u64 {
    turmoil::since_epoch()
        .and_then(|since| u64::try_from(since.as_millis()).ok())
        .unwrap_or(0)
}

/// Milliseconds since the start of the simulation, as the calling host sees it.
pub fn sim_elapsed_ms() -> u64 {
    turmoil::sim_elapsed()
        .and_then(|elapsed| u64::try_from(elapsed.as_millis()).ok())
        .unwrap_or(0)
}

/// A server instance's clock: sim time plus an offset (jumps), failing on demand.
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    /// Added to sim time; the driver sets it to model a clock jump.
    pub offset_ms: Arc<AtomicI64>,
    /// While true every read fails as if the clock were before the epoch.
    pub failing: Arc<AtomicBool>,
}

impl Clock for SimClock {
    fn now_unix_ms(&self) -> Result<u64, ClockError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(ClockError::BeforeEpoch);
        }
        let now = i64::try_from(sim_unix_ms()).unwrap_or(i64::MAX);
        let shifted = now.saturating_add(self.offset_ms.load(Ordering::Relaxed));
        u64::try_from(shifted).map_err(|_| ClockError::BeforeEpoch)
    }
}

/// UUIDs from a seeded generator; one per server index, kept across restarts so ids never
/// repeat within a run.
#[derive(Debug)]
pub struct SimIds {
    /// The generator.
    rng: Mutex<ChaCha8Rng>,
}

impl SimIds {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }
}

/// A random v4 UUID drawn from `rng`.
pub fn uuid_from(rng: &mut impl Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

impl Ids for SimIds {
    fn new_id(&self) -> Uuid {
        match self.rng.lock() {
            Ok(mut rng) => uuid_from(&mut *rng),
            Err(poisoned) => uuid_from(&mut *poisoned.into_inner()),
        }
    }
}

/// How often each allocation fault happens, in per-mille of allocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AllocatorFaults {
    /// No idle game server.
    pub none_idle: u16,
    /// The game server answers HTTP 500.
    pub http_500: u16,
    /// The game server never answers (the service's timeout fires).
    pub timeout: u16,
    /// The game server answers a malformed body.
    pub malformed: u16,
}

/// The fake allocator: succeeds unless a drawn fault says otherwise; healthy once healed.
#[derive(Debug)]
pub struct SimAllocator {
    /// Fault rates.
    faults: AllocatorFaults,
    /// Draws faults and session ids.
    rng: Mutex<ChaCha8Rng>,
    /// Set when the world heals; no more faults.
    healed: AtomicBool,
    /// Faults injected, by kind, for the run's summary.
    pub injected: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Allocations that succeeded.
    pub allocations: AtomicU64,
}

/// How long a "timeout" fault keeps the caller waiting (longer than any allocation timeout).
const HANG_MS: u64 = 3_600_000;

impl SimAllocator {
    /// An allocator with `faults`, drawing from `seed`.
    pub fn new(faults: AllocatorFaults, seed: u64) -> Self {
        Self {
            faults,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            healed: AtomicBool::new(false),
            injected: Mutex::new(std::collections::BTreeMap::new()),
            allocations: AtomicU64::new(0),
        }
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::Relaxed);
    }

    /// Draws the outcome of one allocation.
    fn draw(&self) -> (Option<&'static str>, Uuid, u32) {
        let Ok(mut rng) = self.rng.lock() else {
            return (None, Uuid::nil(), 0);
        };
        let roll: u16 = rng.random_range(0..1000);
        let session = uuid_from(&mut *rng);
        let server = rng.random_range(0..8);
        if self.healed.load(Ordering::Relaxed) {
            return (None, session, server);
        }
        let f = self.faults;
        let kinds = [
            ("none_idle", f.none_idle),
            ("http_500", f.http_500),
            ("timeout", f.timeout),
            ("malformed_body", f.malformed),
        ];
        let mut threshold = 0u16;
        for (name, rate) in kinds {
            threshold = threshold.saturating_add(rate);
            if roll < threshold {
                return (Some(name), session, server);
            }
        }
        (None, session, server)
    }
}

#[async_trait]
impl Allocator for SimAllocator {
    async fn allocate(&self, _players: &[Uuid]) -> Result<Allocation, AllocationError> {
        // A game server answers after a short while, as over a network.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (fault, session_id, server) = self.draw();
        if let Some(kind) = fault
            && let Ok(mut injected) = self.injected.lock()
        {
            *injected.entry(kind).or_insert(0) += 1;
        }
        match fault {
            Some("none_idle") => Err(AllocationError::NoIdleServer),
            Some("http_500") => Err(AllocationError::HttpStatus(500)),
            Some("timeout") => {
                tokio::time::sleep(Duration::from_millis(HANG_MS)).await;
                Err(AllocationError::Timeout)
            }
            Some(_) => match_server::allocator::parse_created_session(b"{\"server_address\":7}"),
            None => {
                self.allocations.fetch_add(1, Ordering::Relaxed);
                Ok(Allocation {
                    session_id,
                    server_address: format!("gs-{server}.sim:7777"),
                })
            }
        }
    }
}

/// Adapts turmoil's listener to the service's [`Listener`] seam.
pub struct TurmoilListener(pub turmoil::net::TcpListener);

impl Listener for TurmoilListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<(Self::Stream, String)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((stream, peer.to_string()))
    }
}
