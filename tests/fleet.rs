//! The game server lifecycle against the fleet index on real Redis, step by step: register,
//! claim, session created, busy, back to idle, deregister, heartbeat TTL, capacity, a
//! registration that changes under a claim, and a fleet past the old 4,096-key scan limit.
//! Each test drives the production allocator (`RegistryAllocator`) and writes registrations
//! the way game servers do (`SET dedicated_server:<name> {"address","status"}`).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Behaviour, StubGameServer, TestEnv};
use match_server::allocator::{AllocationError, Allocator, RegistryAllocator};
use match_server::clock::{RandomIds, SystemClock};
use match_server::keys::Keys;
use match_server::store::redis_store::RedisStore;
use uuid::Uuid;

/// A claim TTL short enough to wait out in a test.
const SHORT_CLAIM_TTL_MS: u64 = 300;

/// The production allocator on `env`'s Redis, registry and key prefix.
async fn allocator(env: &TestEnv, claim_ttl_ms: u64) -> RegistryAllocator {
    let store = RedisStore::connect(&env.redis_url, 2_000).await.unwrap();
    let mut settings = env.settings().allocator;
    settings.claim_ttl_ms = claim_ttl_ms;
    RegistryAllocator::new(
        Arc::new(store),
        Arc::new(RandomIds),
        Arc::new(SystemClock),
        Keys::new(&env.key_prefix),
        &settings,
    )
}

/// A plain connection for writing registrations as game servers do.
async fn redis(env: &TestEnv) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(env.redis_url.as_str()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Writes `<registry_prefix><name>` = `json`, with a TTL in ms if given (a heartbeat).
async fn register(env: &TestEnv, name: &str, json: serde_json::Value, ttl_ms: Option<u64>) {
    let mut cmd = redis::cmd("SET");
    cmd.arg(format!("{}{name}", env.registry_prefix))
        .arg(json.to_string());
    if let Some(ttl_ms) = ttl_ms {
        cmd.arg("PX").arg(ttl_ms);
    }
    let () = cmd.query_async(&mut redis(env).await).await.unwrap();
}

/// The legacy registration of a server at `address` with `status`.
fn legacy(address: &str, status: &str) -> serde_json::Value {
    serde_json::json!({ "address": address, "status": status })
}

/// Runs sweep steps until one full round over the registry ended.
async fn sweep_round(allocator: &RegistryAllocator) {
    common::within(common::WAIT, "a full sweep round", async {
        while !allocator.fleet().sweep_step().await.unwrap().round_done {}
    })
    .await;
}

/// Goal: register -> claim -> session created -> busy -> back to idle -> claim again, for a
/// server using the inherited registration unchanged: the index finds it, hands it to one
/// allocation only, keeps it while it is busy and gives it out again once it is idle.
#[tokio::test]
async fn legacy_server_goes_through_its_lifecycle() {
    let env = TestEnv::new();
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    // Register: the sweep indexes it.
    sweep_round(&alloc).await;
    assert_eq!(alloc.free_servers().await.unwrap(), 1);
    // Claim + session created: the stub was asked, the players see its address.
    let players = [Uuid::new_v4(), Uuid::new_v4()];
    let allocation = alloc.allocate(&players).await.unwrap();
    assert_eq!(allocation.server_address, stub.address);
    assert_eq!(stub.requests().len(), 1);
    assert_eq!(stub.requests()[0].players, players);
    assert_eq!(alloc.free_servers().await.unwrap(), 0);
    assert_eq!(
        alloc.allocate(&players).await,
        Err(AllocationError::NoIdleServer)
    );
    // Busy: the server flips its own status; past the claim TTL it stays taken.
    register(&env, &stub.name, legacy(&stub.address, "busy"), None).await;
    tokio::time::sleep(Duration::from_millis(SHORT_CLAIM_TTL_MS + 50)).await;
    sweep_round(&alloc).await;
    assert_eq!(alloc.free_servers().await.unwrap(), 0);
    assert_eq!(
        alloc.allocate(&players).await,
        Err(AllocationError::NoIdleServer)
    );
    // Back to idle: the next sweep gives it out again.
    register(&env, &stub.name, legacy(&stub.address, "idle"), None).await;
    sweep_round(&alloc).await;
    assert_eq!(alloc.free_servers().await.unwrap(), 1);
    alloc.allocate(&players).await.unwrap();
    assert_eq!(stub.requests().len(), 2);
}

/// Goal: a server that is still "idle" in its registration right after a claim (it has not
/// flipped to busy yet) is not claimed again before the claim TTL; after it, its
/// registration is the truth again (the reservation of the inherited allocator).
#[tokio::test]
async fn claim_holds_the_server_until_its_ttl() {
    let env = TestEnv::new();
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    sweep_round(&alloc).await;
    alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    sweep_round(&alloc).await;
    assert_eq!(alloc.free_servers().await.unwrap(), 0, "held by the claim");
    tokio::time::sleep(Duration::from_millis(SHORT_CLAIM_TTL_MS + 50)).await;
    sweep_round(&alloc).await;
    assert_eq!(
        alloc.free_servers().await.unwrap(),
        1,
        "the registration says idle"
    );
    alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    assert_eq!(stub.requests().len(), 2);
}

/// Goal: deregister - a server whose key was deleted is never asked for a session, even
/// while the index still lists it as free: the claim reads its registration, drops it from
/// the index and answers "no server".
#[tokio::test]
async fn deregistered_server_is_never_called() {
    let env = TestEnv::new();
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    sweep_round(&alloc).await;
    assert_eq!(alloc.free_servers().await.unwrap(), 1);
    let key = format!("{}{}", env.registry_prefix, stub.name);
    let () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis(&env).await)
        .await
        .unwrap();
    assert_eq!(
        alloc.allocate(&[Uuid::new_v4()]).await,
        Err(AllocationError::NoIdleServer)
    );
    assert!(stub.requests().is_empty());
    assert_eq!(alloc.free_servers().await.unwrap(), 0);
}

/// Goal: heartbeat - a server that registers with a TTL and stops renewing it (it died)
/// leaves the fleet: no allocation is sent to it once the key expired.
#[tokio::test]
async fn server_without_heartbeat_leaves_the_fleet() {
    let env = TestEnv::new();
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    register(&env, &stub.name, legacy(&stub.address, "idle"), Some(200)).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    sweep_round(&alloc).await;
    assert_eq!(alloc.free_servers().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        alloc.allocate(&[Uuid::new_v4()]).await,
        Err(AllocationError::NoIdleServer)
    );
    assert!(stub.requests().is_empty());
}

/// Goal: capacity - a server registered with `"capacity": 2` hosts two matches at once
/// and is not given a third until it reports a session ended.
#[tokio::test]
async fn server_with_capacity_hosts_several_matches() {
    let env = TestEnv::new();
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let multi = |sessions: u32| {
        serde_json::json!({
            "address": stub.address, "status": "idle", "capacity": 2, "sessions": sessions
        })
    };
    register(&env, &stub.name, multi(0), None).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    sweep_round(&alloc).await;
    alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    assert_eq!(
        alloc.allocate(&[Uuid::new_v4()]).await,
        Err(AllocationError::NoIdleServer)
    );
    // Both sessions run; one ends (the server reports 1 after the claims' TTL).
    tokio::time::sleep(Duration::from_millis(SHORT_CLAIM_TTL_MS + 50)).await;
    register(&env, &stub.name, multi(1), None).await;
    sweep_round(&alloc).await;
    alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    assert_eq!(stub.requests().len(), 3);
}

/// Goal: a server whose registration changed after the index saw it (moved to another
/// address) is called at its new address, never at the stale one.
#[tokio::test]
async fn claim_follows_a_changed_registration() {
    let env = TestEnv::new();
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    register(&env, &stub.name, legacy("127.0.0.1:9", "idle"), None).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    sweep_round(&alloc).await;
    register(&env, &stub.name, legacy(&stub.address, "idle"), None).await;
    let allocation = alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    assert_eq!(allocation.server_address, stub.address);
}

/// Goal: a fleet larger than the old scan limit (4,096 keys): the one idle server among
/// 5,000 busy ones is found, where the inherited allocator never looked past the limit.
#[tokio::test]
async fn idle_server_beyond_the_old_scan_limit_is_found() {
    const BUSY: usize = 5_000;
    let env = TestEnv::new();
    let mut connection = redis(&env).await;
    let mut pipe = redis::pipe();
    for index in 0..BUSY {
        pipe.cmd("SET")
            .arg(format!("{}busy-{index:05}", env.registry_prefix))
            .arg(legacy("127.0.0.1:9", "busy").to_string())
            .ignore();
    }
    let () = pipe.query_async(&mut connection).await.unwrap();
    // Named to sort after every busy one.
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    register(&env, "zz-last", legacy(&stub.address, "idle"), None).await;
    let alloc = allocator(&env, SHORT_CLAIM_TTL_MS).await;
    sweep_round(&alloc).await;
    let allocation = alloc.allocate(&[Uuid::new_v4()]).await.unwrap();
    assert_eq!(allocation.server_address, stub.address);
}
