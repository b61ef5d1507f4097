//! The fleet index scripts (`fleet_claim`, `fleet_release`, `fleet_sync`) as the allocator
//! calls them, through the one call path to the real Lua in the fake: each step of a game
//! server's lifecycle and what it leaves in the index.

use std::sync::Arc;

use match_server::check::Checks;
use match_server::keys::Keys;
use match_server::metrics::Metrics;
use match_server::probe::NoProbe;
use match_server::scripts::ScriptRunner;
use match_server::scripts::fleet_claim::{ClaimReply, FleetClaim};
use match_server::scripts::fleet_release::{FleetRelease, ReleaseReply};
use match_server::scripts::fleet_sync::{FleetSync, Registration, ServerReport, SyncReply};
use uuid::Uuid;

use super::*;
use crate::fake_redis::FakeRedis;

/// The key prefix of the tests.
const PREFIX: &str = "{mm}";
/// How long a claim holds its slot.
const CLAIM_TTL_MS: u64 = 30_000;

/// A runner on a fresh fake.
fn runner() -> (FakeRedis, ManualClock, ScriptRunner) {
    let (redis, clock) = fake();
    let metrics = Arc::new(Metrics::default());
    let checks = Checks::new(metrics.clone(), Arc::new(NoProbe));
    let runner = ScriptRunner::new(Arc::new(redis.clone()), Keys::new(PREFIX), metrics, checks);
    (redis, clock, runner)
}

/// A registration report of `name` at `address`.
fn report(name: &str, status: &str, capacity: u32, sessions: u32) -> ServerReport {
    ServerReport {
        name: name.to_owned(),
        registration: Some(Registration {
            address: format!("{name}.fleet:7777"),
            status: status.to_owned(),
            capacity,
            sessions,
        }),
    }
}

async fn sync(runner: &ScriptRunner, now_ms: u64, reports: &[ServerReport]) -> SyncReply {
    runner.call(&FleetSync { now_ms, reports }).await.unwrap()
}

async fn claim(runner: &ScriptRunner, token: Uuid, now_ms: u64) -> ClaimReply {
    let call = FleetClaim {
        token,
        now_ms,
        claim_ttl_ms: CLAIM_TTL_MS,
    };
    runner.call(&call).await.unwrap()
}

/// The name a claim got, or `None` for "no free server".
fn claimed(reply: &ClaimReply) -> Option<&str> {
    match reply {
        ClaimReply::Claimed { name, .. } => Some(name),
        ClaimReply::None { .. } => None,
    }
}

/// Goal: register -> claim -> busy -> back to idle -> deregister, for a legacy (capacity 1)
/// server: a claimed server is not claimed twice, the server's own "idle" cannot free it
/// before the claim TTL (it may not have heard of the session yet), and after it can.
#[tokio::test]
async fn legacy_server_lifecycle() {
    let (_redis, _clock, runner) = runner();
    let now = START_MS;
    assert_eq!(claimed(&claim(&runner, Uuid::new_v4(), now).await), None);
    let synced = sync(&runner, now, &[report("a", "idle", 1, 0)]).await;
    assert_eq!((synced.upserted, synced.free_servers), (1, 1));
    let first = claim(&runner, Uuid::new_v4(), now).await;
    assert_eq!(
        first,
        ClaimReply::Claimed {
            name: "a".into(),
            address: "a.fleet:7777".into(),
            free_servers: 0
        }
    );
    assert_eq!(claimed(&claim(&runner, Uuid::new_v4(), now).await), None);
    // The registration still says idle (the server has not flipped yet): slot stays taken.
    let early = sync(&runner, now + 1_000, &[report("a", "idle", 1, 0)]).await;
    assert_eq!(early.free_servers, 0);
    let busy = sync(&runner, now + 2_000, &[report("a", "busy", 1, 1)]).await;
    assert_eq!(busy.free_servers, 0);
    let later = now + CLAIM_TTL_MS + 1;
    assert_eq!(
        sync(&runner, later, &[report("a", "busy", 1, 1)])
            .await
            .free_servers,
        0
    );
    // Back to idle after the match: free again.
    assert_eq!(
        sync(&runner, later, &[report("a", "idle", 1, 0)])
            .await
            .free_servers,
        1
    );
    // Deregistered (key gone): out of the index.
    let gone = ServerReport {
        name: "a".into(),
        registration: None,
    };
    let removed = sync(&runner, later, &[gone]).await;
    assert_eq!((removed.removed, removed.free_servers), (1, 0));
    assert_eq!(claimed(&claim(&runner, Uuid::new_v4(), later).await), None);
}

/// Goal: a server with capacity 2 is claimed twice, then not again until a session ends;
/// a release gives a slot back once, and its repeat changes nothing (idempotent).
#[tokio::test]
async fn capacity_and_idempotent_release() {
    let (_redis, _clock, runner) = runner();
    let now = START_MS;
    sync(&runner, now, &[report("m", "idle", 2, 0)]).await;
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(claimed(&claim(&runner, one, now).await), Some("m"));
    assert_eq!(claimed(&claim(&runner, two, now).await), Some("m"));
    assert_eq!(claimed(&claim(&runner, Uuid::new_v4(), now).await), None);
    let released = runner.call(&FleetRelease { token: two }).await.unwrap();
    assert_eq!(
        released,
        ReleaseReply::Released {
            name: "m".into(),
            free_servers: 1
        }
    );
    let again = runner.call(&FleetRelease { token: two }).await.unwrap();
    assert_eq!(again, ReleaseReply::Gone { free_servers: 1 });
    assert_eq!(
        claimed(&claim(&runner, Uuid::new_v4(), now).await),
        Some("m")
    );
    // The server reports one session after the claims' TTL: one slot free.
    let later = now + CLAIM_TTL_MS + 1;
    assert_eq!(
        sync(&runner, later, &[report("m", "idle", 2, 1)])
            .await
            .free_servers,
        1
    );
    assert_eq!(
        claimed(&claim(&runner, Uuid::new_v4(), later).await),
        Some("m")
    );
    assert_eq!(claimed(&claim(&runner, Uuid::new_v4(), later).await), None);
}

/// Goal: a claim's key expires with the claim TTL (a matchmaker that crashed after the
/// claim leaves nothing behind), and a release after that is a harmless `gone`.
#[tokio::test]
async fn claim_key_expires() {
    let (redis, clock, runner) = runner();
    sync(&runner, START_MS, &[report("a", "idle", 1, 0)]).await;
    let token = Uuid::new_v4();
    claim(&runner, token, START_MS).await;
    let key = Keys::new(PREFIX).fleet_claim(token);
    assert_eq!(ok(&redis, &["GET", &key]), bulk("a"));
    clock.advance_ms(CLAIM_TTL_MS + 1);
    assert_eq!(ok(&redis, &["GET", &key]), Reply::Nil);
    let late = runner.call(&FleetRelease { token }).await.unwrap();
    assert_eq!(late, ReleaseReply::Gone { free_servers: 0 });
}

/// Goal: a free-set member without a free record (an index someone edited by hand) is
/// removed by the claim that meets it instead of being handed out.
#[tokio::test]
async fn claim_repairs_a_stale_free_member() {
    let (redis, _clock, runner) = runner();
    let keys = Keys::new(PREFIX);
    ok(&redis, &["SADD", &keys.fleet_free(), "ghost"]);
    assert_eq!(
        claim(&runner, Uuid::new_v4(), START_MS).await,
        ClaimReply::None { free_servers: 0 }
    );
}
