//! An instance that crashes cleans up nothing; leases make its players expire.

use crate::common;

use std::time::Duration;

use common::binary::{Binary, binary_settings};
use common::{Client, MODE_1V1, TestEnv, TestServer};

/// Goal: when the binary is killed (SIGKILL) with a player queued, the player's entry
/// expires with its lease and another instance sweeps it out of Redis; a player arriving
/// on that instance afterwards waits alone instead of being matched with the ghost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_leaves_no_ghost_after_its_lease() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = binary_settings(&env);
    settings.timing.lease_ttl_ms = 2_000;
    settings.timing.lease_renew_interval_ms = 500;
    let lease = Duration::from_millis(settings.timing.lease_ttl_ms);
    let mut binary = Binary::start(&settings, &env.redis_url).await;
    // The entry's lease runs at least `lease` past this instant.
    let enqueuing = tokio::time::Instant::now();
    let (_ghost_client, ghost) = Client::enqueued(binary.addr, "ghost", MODE_1V1).await;
    binary.kill();
    let status = binary.wait_exit(common::WAIT).await;
    assert!(!status.success(), "killed, yet exited with {status}");
    assert!(
        redis.in_queue(MODE_1V1, ghost).await,
        "a crash cleans up nothing"
    );

    settings.redis_url.clone_from(&env.redis_url);
    let survivor = TestServer::start(settings).await;
    common::eventually("the ghost's entry expires and is swept", || async {
        let (entry, queued) = redis.entry_and_queued(MODE_1V1, ghost).await;
        (entry.is_none() && !queued).then_some(())
    })
    .await;
    let swept = enqueuing.elapsed();
    assert!(
        swept >= lease,
        "swept after only {swept:?}, before the lease ran out"
    );

    let (mut late, late_id) = Client::enqueued(survivor.addr, "late", MODE_1V1).await;
    late.expect_silence(common::QUIET).await;
    assert_eq!(
        redis.queue(MODE_1V1).await,
        [late_id.to_string()].into_iter().collect()
    );
}
