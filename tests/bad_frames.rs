//! Bad client frames get a precise error code and never break the connection.

use crate::common;

use common::{Behaviour, Client, MODE_1V1, Msg, StubGameServer, TestEnv, TestServer};
use tokio_tungstenite::tungstenite::Message;

/// Goal: each kind of bad frame sent while idle gets an `error` with its own code, and the
/// same connection can then enqueue normally: malformed JSON, unknown message type,
/// unknown game mode, non-UUID player id, bad or unexpected loading_complete, dequeue
/// while not queued, binary frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_their_error_code_and_the_connection_stays_usable() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let player = common::new_player();
    let cases = [
        (
            "malformed JSON",
            Message::text("{\"type\": \"enqueue\", oops"),
            "invalid_message",
        ),
        ("not an object", Message::text("42"), "invalid_message"),
        (
            "unknown message type",
            Message::text(r#"{"type":"teleport","to":"mars"}"#),
            "invalid_message",
        ),
        (
            "missing field",
            Message::text(r#"{"type":"enqueue","game_mode":"Normal_1v1"}"#),
            "invalid_message",
        ),
        (
            "unknown mode",
            Message::text(Client::enqueue_frame(player, "Ranked_5v5")),
            "unknown_game_mode",
        ),
        (
            "non-UUID player id",
            Message::text(r#"{"type":"enqueue","player_id":"bob","game_mode":"Normal_1v1"}"#),
            "invalid_player_id",
        ),
        (
            "non-UUID loading session id",
            Message::text(r#"{"type":"loading_complete","loading_session_id":"soon"}"#),
            "invalid_loading_session_id",
        ),
        (
            "loading_complete while not loading",
            Message::text(format!(
                r#"{{"type":"loading_complete","loading_session_id":"{}"}}"#,
                common::new_player()
            )),
            "not_loading",
        ),
        (
            "dequeue while not queued",
            Message::text(r#"{"type":"dequeue"}"#),
            "not_in_queue",
        ),
        (
            "binary frame",
            Message::binary(b"\x00\x01".to_vec()),
            "binary_not_supported",
        ),
    ];
    for (what, frame, code) in cases {
        let mut client = Client::connect_as(server.addr, what, player).await;
        client.send_message(frame).await;
        client.expect_error(code).await;
        client.enqueue(player, MODE_1V1).await;
        client.expect(Msg::Enqueued).await;
        assert!(
            redis.in_queue(MODE_1V1, player).await,
            "{what}: enqueue worked"
        );
        client.dequeue().await;
        client.expect(Msg::Dequeued).await;
        client.close().await;
    }
    redis.wait_settled(false).await;
}

/// Goal: in a loading session, `loading_complete` for another session gets `error
/// wrong_loading_session`, bad frames and a second enqueue get their errors, and the
/// player still completes the right session and gets match_found; after the match the
/// connection can enqueue again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_loading_session_is_refused_and_the_player_still_matches() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;

    let (mut a, a_id) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    a.send_text("not json").await;
    a.expect_error("invalid_message").await;
    assert!(
        redis.in_queue(MODE_1V1, a_id).await,
        "still queued after a bad frame"
    );

    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);

    let elsewhere = common::new_player();
    a.loading_complete(elsewhere).await;
    a.expect_error("wrong_loading_session").await;
    a.enqueue(a_id, MODE_1V1).await;
    a.expect_error("already_queued").await;
    a.send_text(r#"{"type":"loading_complete"}"#).await;
    a.expect_error("invalid_message").await;
    assert_eq!(
        redis.ready_flag(loading, a_id).await.as_deref(),
        Some("0"),
        "nothing was marked ready"
    );

    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);

    a.loading_complete(loading).await;
    a.expect_error("not_loading").await;
    a.enqueue(a_id, MODE_1V1).await;
    a.expect(Msg::Enqueued).await;
    assert!(
        redis.in_queue(MODE_1V1, a_id).await,
        "queued again after the match"
    );
}

/// Goal: `loading_complete` sent twice for one session gets `error already_loaded` the
/// second time and does not disturb the match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_complete_twice_is_refused() {
    let env = TestEnv::new();
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;
    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    a.loading_complete(loading).await;
    a.loading_complete(loading).await;
    a.expect_error("already_loaded").await;
    b.loading_complete(loading).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);
}
