//! The `match-server` command line: production by default (no secret, no start), `--dev`
//! for local demos, and `token` to mint a player token.

use crate::common;

use common::binary::{Binary, binary_settings, run_to_end};
use common::env::TEST_SECRET;
use common::{Client, Credentials, MODE_1V1, Msg, TestEnv, TestServer};
use match_server::config::AuthSettings;

/// Goal: started as shipped - auth required - but without a secret, the server does not
/// serve: it exits with status 2 and a message that tells how to set the secret or how to
/// use dev mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_without_a_secret_fails_with_instructions() {
    let env = TestEnv::new();
    let bind = format!("127.0.0.1:{}", common::redis_server::free_port());
    let output = run_to_end(&["--bind", &bind, "--redis", &env.redis_url]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for needle in ["auth.secret", "MATCH_SERVER_AUTH__SECRET", "--dev"] {
        assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
    assert!(
        common::http::get(bind.parse().unwrap(), "/healthz")
            .await
            .is_err(),
        "nothing listens"
    );
}

/// Goal: `--dev` overrides the production config (auth required, no secret): the server
/// starts and accepts a client without a token, which then plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_flag_serves_unauthenticated_clients() {
    let env = TestEnv::new();
    let mut settings = binary_settings(&env);
    settings.auth = AuthSettings::default();
    let binary = Binary::start_with_args(&settings, &env.redis_url, &["--dev"]).await;
    let mut client = Client::connect_anonymous(binary.addr, "demo").await;
    client.enqueue_self(MODE_1V1).await;
    client.expect(Msg::Enqueued).await;
    assert!(
        binary.log().contains("auth mode dev"),
        "the dev mode is logged as a warning"
    );
}

/// Goal: `match-server token --player P --secret S` prints a token that a server with the
/// same secret accepts for P; without a secret the command fails and says where to put one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_subcommand_mints_a_token_the_server_accepts() {
    let env = TestEnv::new();
    let server = TestServer::start(env.settings()).await;
    let player = common::new_player();
    let player_arg = player.to_string();
    let output = run_to_end(&[
        "token",
        "--player",
        &player_arg,
        "--secret",
        TEST_SECRET,
        "--ttl-secs",
        "60",
    ])
    .await;
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let mut client =
        Client::try_connect_with(server.addr, "minted", player, Credentials::Header(token))
            .await
            .expect("the minted token is accepted");
    client.enqueue(player, MODE_1V1).await;
    client.expect(Msg::Enqueued).await;

    let output = run_to_end(&["token", "--player", &player_arg]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MATCH_SERVER_AUTH__SECRET"), "{stderr}");
}
