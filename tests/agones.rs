//! Agones as the allocation backend, against a stub of the Agones allocator service that
//! speaks the documented REST JSON: what the matchmaker asks (namespace, selectors, the
//! session id and players as metadata), how answers and refusals map onto `match_found` and
//! the error codes, mutual TLS, and a full match on real Redis.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::agones::{AgonesBehaviour, GAME_PORT, StubAgones, tls_file};
use common::{Client, MODE_1V1, Msg, TestEnv, TestServer};
use match_server::allocator::agones::AgonesAllocator;
use match_server::allocator::agones::settings::{AgonesSettings, SelectorSettings};
use match_server::allocator::{AllocationError, Allocator};
use match_server::clock::RandomIds;
use match_server::config::AllocatorKind;
use uuid::Uuid;

/// Settings that point at `stub`, plain or with the test CA (and no client certificate).
fn settings_for(stub: &StubAgones) -> AgonesSettings {
    let https = stub.url.starts_with("https");
    AgonesSettings {
        url: stub.url.clone(),
        namespace: "games".to_owned(),
        selectors: vec![SelectorSettings {
            match_labels: [("agones.dev/fleet".to_owned(), "arena".to_owned())].into(),
            ..SelectorSettings::default()
        }],
        tls_ca_file: https.then(|| tls_file("ca.crt")),
        ..AgonesSettings::default()
    }
}

/// With our client certificate for mutual TLS.
fn with_client_cert(settings: AgonesSettings) -> AgonesSettings {
    AgonesSettings {
        tls_client_cert_file: Some(tls_file("client.crt")),
        tls_client_key_file: Some(tls_file("client.key")),
        ..settings
    }
}

fn allocator(settings: &AgonesSettings) -> AgonesAllocator {
    settings.validate().unwrap();
    AgonesAllocator::new(settings, Arc::new(RandomIds)).unwrap()
}

/// Goal: one allocation sends the documented request - namespace, the configured selector
/// with matchLabels, the new session id as a label and annotation and the players as an
/// annotation - and answers `address:port` of the default (first) or the named port, with
/// the session id the matchmaker made.
#[tokio::test]
async fn request_carries_selectors_and_metadata() {
    let stub = StubAgones::start(AgonesBehaviour::allocate()).await;
    let players = [Uuid::new_v4(), Uuid::new_v4()];
    let allocation = allocator(&settings_for(&stub))
        .allocate(&players)
        .await
        .unwrap();
    assert_eq!(allocation.server_address, format!("127.0.0.1:{GAME_PORT}"));
    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request["namespace"], "games");
    assert_eq!(
        request["gameServerSelectors"],
        serde_json::json!([{"matchLabels": {"agones.dev/fleet": "arena"}, "gameServerState": "READY"}])
    );
    let session = allocation.session_id.to_string();
    assert_eq!(
        request["metadata"]["labels"]["match-server/session-id"],
        session
    );
    let annotations = &request["metadata"]["annotations"];
    assert_eq!(annotations["match-server/session-id"], session);
    assert_eq!(
        annotations["match-server/players"],
        format!("{},{}", players[0], players[1])
    );

    let query = AgonesSettings {
        port_name: Some("query".to_owned()),
        ..settings_for(&stub)
    };
    let allocation = allocator(&query).allocate(&players).await.unwrap();
    assert_eq!(
        allocation.server_address,
        format!("127.0.0.1:{}", GAME_PORT + 1)
    );
    assert_ne!(
        stub.requests()[1]["metadata"]["labels"]["match-server/session-id"],
        session,
        "every allocation gets a session id of its own"
    );
}

/// Goal: Agones's refusals map onto the registry backend's errors (and so onto the same
/// codes and degradation policy): "no GameServer" at the configured status and contention
/// are `no_server_available`, the allocator's deadline is `allocation_timeout`, other
/// statuses, a malformed answer or no allocator at all are `allocation_failed`.
#[tokio::test]
async fn refusals_map_onto_the_error_codes() {
    let stub = StubAgones::start(AgonesBehaviour::NoReadyServer { status: 429 }).await;
    let default = allocator(&settings_for(&stub));
    let answering_503 = allocator(&AgonesSettings {
        unallocated_status: 503,
        ..settings_for(&stub)
    });
    let players = [Uuid::new_v4()];
    let cases: [(AgonesBehaviour, &AgonesAllocator, AllocationError); 7] = [
        (
            AgonesBehaviour::NoReadyServer { status: 429 },
            &default,
            AllocationError::NoIdleServer,
        ),
        (
            AgonesBehaviour::NoReadyServer { status: 503 },
            &answering_503,
            AllocationError::NoIdleServer,
        ),
        (
            AgonesBehaviour::Error(503),
            &default,
            AllocationError::HttpStatus(503),
        ),
        (
            AgonesBehaviour::Error(409),
            &default,
            AllocationError::NoIdleServer,
        ),
        (
            AgonesBehaviour::Error(504),
            &default,
            AllocationError::Timeout,
        ),
        (
            AgonesBehaviour::Error(500),
            &default,
            AllocationError::HttpStatus(500),
        ),
        (
            AgonesBehaviour::NoReadyServer { status: 429 },
            &answering_503,
            AllocationError::HttpStatus(429),
        ),
    ];
    for (behaviour, allocator, expected) in cases {
        stub.set_behaviour(behaviour.clone());
        let error = allocator.allocate(&players).await.unwrap_err();
        assert_eq!(error, expected, "{behaviour:?}");
    }
    stub.set_behaviour(AgonesBehaviour::Malformed);
    let error = default.allocate(&players).await.unwrap_err();
    assert!(
        matches!(error, AllocationError::MalformedBody(_)),
        "{error:?}"
    );
    let url = stub.url.clone();
    drop(stub);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let gone = allocator(&AgonesSettings {
        url,
        ..AgonesSettings::default()
    });
    let error = gone.allocate(&players).await.unwrap_err();
    assert!(
        matches!(error, AllocationError::Unreachable(_)),
        "{error:?}"
    );
}

/// Goal: over mutual TLS the allocation works with the client certificate and the
/// allocator's CA, and fails (unreachable) without the certificate, with a CA that did not
/// sign the server's certificate, or when the certificate does not name the server; a
/// configured `tls_server_name` is what the certificate is checked against.
#[tokio::test]
async fn mutual_tls_needs_our_certificate_and_their_ca() {
    let stub = StubAgones::start_mtls(AgonesBehaviour::allocate()).await;
    let players = [Uuid::new_v4()];
    let good = with_client_cert(settings_for(&stub));
    assert!(allocator(&good).allocate(&players).await.is_ok());
    let by_name = AgonesSettings {
        tls_server_name: Some("localhost".to_owned()),
        ..good.clone()
    };
    assert!(allocator(&by_name).allocate(&players).await.is_ok());
    let refused = [
        ("no client certificate", settings_for(&stub)),
        (
            "a CA that did not sign the server",
            AgonesSettings {
                tls_ca_file: Some(tls_file("client.crt")),
                ..good.clone()
            },
        ),
        (
            "a name the certificate does not carry",
            AgonesSettings {
                tls_server_name: Some("allocator.elsewhere.example".to_owned()),
                ..good.clone()
            },
        ),
    ];
    for (why, settings) in refused {
        let error = allocator(&settings).allocate(&players).await.unwrap_err();
        assert!(
            matches!(error, AllocationError::Unreachable(_)),
            "{why}: {error:?}"
        );
    }
    assert_eq!(
        stub.requests().len(),
        2,
        "only the accepted clients got through"
    );
    let missing = AgonesSettings {
        tls_client_key_file: Some(tls_file("missing.key")),
        ..good
    };
    let error = AgonesAllocator::new(&missing, Arc::new(RandomIds))
        .err()
        .unwrap();
    assert!(error.contains("tls_client_key_file"), "{error}");
}

/// Plays `clients` (all in one loading session after `start_loading`) until each gets
/// `match_found`, all at once so each new loading session completes, reporting loading
/// complete for every (re)started loading session and accepting `no_server_available` on
/// the way; returns what they were matched with.
async fn play_until_matched(clients: &mut [Client]) -> BTreeSet<(Uuid, String)> {
    let each = clients.iter_mut().map(|client| async move {
        loop {
            match client.recv().await {
                Msg::StartLoading(loading) => client.loading_complete(loading).await,
                Msg::Error { code, .. } if code == "no_server_available" => {}
                Msg::MatchFound {
                    session_id,
                    server_address,
                } => return (session_id, server_address),
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    futures_util::future::join_all(each)
        .await
        .into_iter()
        .collect()
}

/// Goal: on real Redis with `allocator.kind = "agones"`, two players who loaded are
/// matched on the GameServer Agones allocated, with the session id the allocator service
/// received as metadata, after Agones first had no Ready GameServer; /metrics counts the
/// refusal and the allocation by outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_are_matched_on_the_agones_game_server() {
    let env = TestEnv::new();
    let stub = StubAgones::start(AgonesBehaviour::NoReadyServer { status: 429 }).await;
    let mut settings = env.settings();
    settings.allocator.kind = AllocatorKind::Agones;
    settings.allocator.agones = settings_for(&stub);
    let server = TestServer::start(settings).await;
    let (a, a_id) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (b, b_id) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let mut clients = [a, b];
    for client in &mut clients {
        let loading = client.expect_start_loading().await;
        client.loading_complete(loading).await;
    }
    common::eventually("Agones is asked and refuses", || async {
        (!stub.requests().is_empty()).then_some(())
    })
    .await;
    stub.set_behaviour(AgonesBehaviour::allocate());
    let found = play_until_matched(&mut clients).await;
    assert_eq!(
        found.len(),
        1,
        "both players got the same session: {found:?}"
    );
    let (session_id, address) = found.into_iter().next().unwrap();
    assert_eq!(address, format!("127.0.0.1:{GAME_PORT}"));
    let requests = stub.requests();
    let last = requests.last().unwrap();
    assert_eq!(
        last["metadata"]["labels"]["match-server/session-id"],
        session_id.to_string()
    );
    let players: BTreeSet<String> = last["metadata"]["annotations"]["match-server/players"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(players, [a_id, b_id].iter().map(Uuid::to_string).collect());
    let (_, metrics) = common::http::get(server.addr, "/metrics").await.unwrap();
    assert!(
        metrics.contains("match_allocations_total{outcome=\"allocated\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("match_allocations_total{outcome=\"no_server_available\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("match_allocation_wait_seconds_count{outcome=\"allocated\"} 1\n"),
        "{metrics}"
    );
}

/// Goal: an allocator service that never answers gives both players
/// `allocation_timeout` once the allocation timeout has passed (and the metrics count it),
/// and they are matched once Agones answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_allocator_times_out_then_recovers() {
    let env = TestEnv::new();
    let stub = StubAgones::start(AgonesBehaviour::Hang).await;
    let mut settings = env.settings();
    settings.allocator.kind = AllocatorKind::Agones;
    settings.allocator.agones = settings_for(&stub);
    let timeout = std::time::Duration::from_millis(settings.timing.allocation_timeout_ms);
    let server = TestServer::start(settings).await;
    let (a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let mut clients = [a, b];
    for client in &mut clients {
        let loading = client.expect_start_loading().await;
        client.loading_complete(loading).await;
    }
    let loaded = tokio::time::Instant::now();
    for client in &mut clients {
        client.expect_error("allocation_timeout").await;
    }
    assert!(
        loaded.elapsed() >= timeout,
        "gave up after {:?}",
        loaded.elapsed()
    );
    let (_, metrics) = common::http::get(server.addr, "/metrics").await.unwrap();
    assert!(
        metrics.contains("match_allocations_total{outcome=\"allocation_timeout\"} 1\n"),
        "{metrics}"
    );
    stub.set_behaviour(AgonesBehaviour::allocate());
    let found = play_until_matched(&mut clients).await;
    assert_eq!(found.len(), 1, "{found:?}");
}
