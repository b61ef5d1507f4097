//! The duplicate/lost verification: pure checks over what every player saw, what the stub
//! game server was asked for, and what Redis still holds after the run.
//!
//! A run passes when every player the server accepted (`enqueued`) got exactly one
//! `match_found`, at most one `start_loading` per loading session, no player is in two
//! matches, every match holds exactly the mode's player count and agrees with the game
//! server's own record of it, and Redis holds nothing of the run afterwards.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use uuid::Uuid;

use crate::player::{Outcome, PlayerRecord};

/// One problem the verification found, naming the player or session concerned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The server accepted the player, which never got `match_found`.
    Lost {
        /// The player.
        player_id: Uuid,
        /// How its connection ended.
        outcome: Outcome,
    },
    /// The player got more than one `match_found`.
    DuplicateMatchFound {
        /// The player.
        player_id: Uuid,
        /// How many it got.
        count: usize,
    },
    /// The player got more than one `start_loading` for one loading session.
    DuplicateStartLoading {
        /// The player.
        player_id: Uuid,
        /// The loading session.
        loading_session_id: Uuid,
        /// How many it got.
        count: usize,
    },
    /// The player got `match_found` without any `start_loading` before it.
    MatchWithoutLoading {
        /// The player.
        player_id: Uuid,
    },
    /// One player id ran in two records (a load generator bug, checked all the same).
    DuplicatePlayerRecord {
        /// The player.
        player_id: Uuid,
    },
    /// The player is in two game server sessions that were handed out.
    PlayerInTwoMatches {
        /// The player.
        player_id: Uuid,
        /// The sessions it appears in.
        sessions: Vec<Uuid>,
    },
    /// A game session was announced to a number of players other than the mode's count.
    WrongMatchSize {
        /// The game server's session.
        session_id: Uuid,
        /// How many players were told about it.
        players: usize,
    },
    /// Players were told of a session the game server did not create for exactly them.
    MatchDisagreesWithGameServer {
        /// The game server's session.
        session_id: Uuid,
    },
    /// Redis still holds state of the run.
    RedisLeftover {
        /// What is left, e.g. `{mm}:players has 3 fields`.
        what: String,
    },
}

/// The verdict of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Players whose enqueue the server accepted.
    pub enqueued_players: usize,
    /// Players that got exactly one `match_found`.
    pub matched_players: usize,
    /// Distinct game sessions players were told about.
    pub matches: usize,
    /// Every problem found; empty when the run passes.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// Whether no player was duplicated or lost and Redis is clean.
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }

    /// How many findings of each kind, for a short report.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for finding in &self.findings {
            let name = match finding {
                Finding::Lost { .. } => "lost",
                Finding::DuplicateMatchFound { .. } => "duplicate_match_found",
                Finding::DuplicateStartLoading { .. } => "duplicate_start_loading",
                Finding::MatchWithoutLoading { .. } => "match_without_loading",
                Finding::DuplicatePlayerRecord { .. } => "duplicate_player_record",
                Finding::PlayerInTwoMatches { .. } => "player_in_two_matches",
                Finding::WrongMatchSize { .. } => "wrong_match_size",
                Finding::MatchDisagreesWithGameServer { .. } => "match_disagrees_with_game_server",
                Finding::RedisLeftover { .. } => "redis_leftover",
            };
            *counts.entry(name.to_owned()).or_insert(0) += 1;
        }
        counts
    }
}

/// What the verification needs besides the player records.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// Players per match of the mode.
    pub players_per_match: usize,
    /// Sessions the stub game server created: session id -> players in its request.
    /// `None` when no stub ran (the cross-check with the game server is then skipped).
    pub game_server_sessions: Option<BTreeMap<Uuid, Vec<Uuid>>>,
    /// Descriptions of what Redis still holds of the run.
    pub redis_leftovers: Vec<String>,
}

/// Checks the run; see the module documentation for the rules.
pub fn verify(records: &[PlayerRecord], evidence: &Evidence) -> Verdict {
    let mut findings = Vec::new();
    check_unique_records(records, &mut findings);
    let mut matched_players = 0;
    for record in records {
        if check_player(record, &mut findings) {
            matched_players += 1;
        }
    }
    let announced = announced_sessions(records);
    check_sessions(&announced, evidence, &mut findings);
    findings.extend(
        evidence
            .redis_leftovers
            .iter()
            .map(|what| Finding::RedisLeftover { what: what.clone() }),
    );
    findings.sort();
    Verdict {
        enqueued_players: records.iter().filter(|r| r.was_enqueued()).count(),
        matched_players,
        matches: announced.len(),
        findings,
    }
}

/// Flags player ids that appear in two records.
fn check_unique_records(records: &[PlayerRecord], findings: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    for record in records {
        if !seen.insert(record.player_id) {
            findings.push(Finding::DuplicatePlayerRecord {
                player_id: record.player_id,
            });
        }
    }
}

/// Checks one player's own message sequence; true when it matched exactly once.
fn check_player(record: &PlayerRecord, findings: &mut Vec<Finding>) -> bool {
    let player_id = record.player_id;
    let mut per_loading: BTreeMap<Uuid, usize> = BTreeMap::new();
    for seen in &record.start_loadings {
        *per_loading.entry(seen.loading_session_id).or_insert(0) += 1;
    }
    for (loading_session_id, count) in per_loading {
        if count > 1 {
            findings.push(Finding::DuplicateStartLoading {
                player_id,
                loading_session_id,
                count,
            });
        }
    }
    match record.matches.len() {
        0 if record.was_enqueued() => {
            findings.push(Finding::Lost {
                player_id,
                outcome: record.outcome,
            });
            false
        }
        0 => false,
        1 => {
            if record.start_loadings.is_empty() {
                findings.push(Finding::MatchWithoutLoading { player_id });
            }
            true
        }
        count => {
            findings.push(Finding::DuplicateMatchFound { player_id, count });
            false
        }
    }
}

/// Game session id -> the players told about it.
fn announced_sessions(records: &[PlayerRecord]) -> BTreeMap<Uuid, BTreeSet<Uuid>> {
    let mut sessions: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
    for record in records {
        for seen in &record.matches {
            sessions
                .entry(seen.session_id)
                .or_default()
                .insert(record.player_id);
        }
    }
    sessions
}

/// Checks match sizes, players in two matches, and agreement with the game server.
fn check_sessions(
    announced: &BTreeMap<Uuid, BTreeSet<Uuid>>,
    evidence: &Evidence,
    findings: &mut Vec<Finding>,
) {
    let mut sessions_of: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (session_id, players) in announced {
        if players.len() != evidence.players_per_match {
            findings.push(Finding::WrongMatchSize {
                session_id: *session_id,
                players: players.len(),
            });
        }
        for player in players {
            sessions_of.entry(*player).or_default().push(*session_id);
        }
        if let Some(created) = &evidence.game_server_sessions {
            let agrees = created
                .get(session_id)
                .is_some_and(|asked| asked.iter().copied().collect::<BTreeSet<_>>() == *players);
            if !agrees {
                findings.push(Finding::MatchDisagreesWithGameServer {
                    session_id: *session_id,
                });
            }
        }
    }
    for (player_id, sessions) in sessions_of {
        if sessions.len() > 1 {
            findings.push(Finding::PlayerInTwoMatches {
                player_id,
                sessions,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::{LoadingSeen, MatchSeen};

    fn record(player_id: Uuid) -> PlayerRecord {
        PlayerRecord {
            player_id,
            target_index: 0,
            scheduled_us: 0,
            started_us: 0,
            connected_us: Some(1),
            enqueue_sent_us: Some(2),
            enqueued_acks: 1,
            start_loadings: Vec::new(),
            matches: Vec::new(),
            error_codes: Vec::new(),
            outcome: Outcome::TimedOut,
            failure: None,
        }
    }

    fn matched(player_id: Uuid, loading: Uuid, session: Uuid) -> PlayerRecord {
        let mut r = record(player_id);
        r.start_loadings.push(LoadingSeen {
            loading_session_id: loading,
            at_us: 3,
        });
        r.matches.push(MatchSeen {
            session_id: session,
            server_address: "127.0.0.1:1".to_owned(),
            at_us: 4,
        });
        r.outcome = Outcome::Matched;
        r
    }

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    /// Goal: a clean run of two matches passes.
    #[test]
    fn clean_run_passes() {
        let p = ids(4);
        let (l1, l2, s1, s2) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let records = vec![
            matched(p[0], l1, s1),
            matched(p[1], l1, s1),
            matched(p[2], l2, s2),
            matched(p[3], l2, s2),
        ];
        let evidence = Evidence {
            players_per_match: 2,
            game_server_sessions: Some(BTreeMap::from([
                (s1, vec![p[0], p[1]]),
                (s2, vec![p[3], p[2]]),
            ])),
            redis_leftovers: Vec::new(),
        };
        let verdict = verify(&records, &evidence);
        assert!(verdict.passed(), "{:?}", verdict.findings);
        assert_eq!(verdict.matched_players, 4);
        assert_eq!(verdict.matches, 2);
    }

    /// Goal: a duplicated player (two match_found, in two matches, a repeated start_loading)
    /// and a lost player (enqueued, never matched) are both flagged, and so is a leftover.
    #[test]
    fn flags_duplicate_and_lost_players() {
        let p = ids(5);
        let (l1, l2, s1, s2) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let mut twice = matched(p[0], l1, s1);
        twice.start_loadings.push(LoadingSeen {
            loading_session_id: l1,
            at_us: 5,
        });
        twice.start_loadings.push(LoadingSeen {
            loading_session_id: l2,
            at_us: 6,
        });
        twice.matches.push(MatchSeen {
            session_id: s2,
            server_address: "127.0.0.1:1".to_owned(),
            at_us: 7,
        });
        let lost = record(p[4]);
        let records = vec![
            twice,
            matched(p[1], l1, s1),
            matched(p[2], l2, s2),
            matched(p[3], l2, s2),
            lost,
        ];
        let evidence = Evidence {
            players_per_match: 2,
            game_server_sessions: Some(BTreeMap::from([
                (s1, vec![p[0], p[1]]),
                (s2, vec![p[2], p[3]]),
            ])),
            redis_leftovers: vec!["{mm}:players has 1 field".to_owned()],
        };
        let verdict = verify(&records, &evidence);
        assert!(!verdict.passed());
        let f = &verdict.findings;
        assert!(f.contains(&Finding::Lost {
            player_id: p[4],
            outcome: Outcome::TimedOut
        }));
        assert!(f.contains(&Finding::DuplicateMatchFound {
            player_id: p[0],
            count: 2
        }));
        assert!(f.contains(&Finding::DuplicateStartLoading {
            player_id: p[0],
            loading_session_id: l1,
            count: 2
        }));
        assert!(f.iter().any(|x| matches!(
            x,
            Finding::PlayerInTwoMatches { player_id, .. } if *player_id == p[0]
        )));
        assert!(f.contains(&Finding::WrongMatchSize {
            session_id: s2,
            players: 3
        }));
        assert!(f.contains(&Finding::MatchDisagreesWithGameServer { session_id: s2 }));
        assert!(f.iter().any(|x| matches!(x, Finding::RedisLeftover { .. })));
        assert_eq!(verdict.counts().get("lost"), Some(&1));
        assert_eq!(verdict.matched_players, 3);
    }

    /// Goal: a player the server refused before `enqueued` is not counted as lost.
    #[test]
    fn refused_player_is_not_lost() {
        let mut refused = record(Uuid::new_v4());
        refused.enqueued_acks = 0;
        refused.outcome = Outcome::Refused;
        let evidence = Evidence {
            players_per_match: 2,
            ..Evidence::default()
        };
        let verdict = verify(&[refused], &evidence);
        assert!(verdict.passed(), "{:?}", verdict.findings);
        assert_eq!(verdict.enqueued_players, 0);
    }
}
