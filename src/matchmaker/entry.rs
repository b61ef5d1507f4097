//! A player's entry in the players hash, decoded by a total parser.
//!
//! The entry is the truth about where a player is (`queued`, `loading`, `matched`,
//! `removed`); pub/sub notices are hints, and a session that may have missed one compares
//! itself with its entry. Encoding (see `lua/lib.lua`):
//! `state|mode|owner|lease_deadline_ms|loading|session|address|ended|reason`.
//!
//! `removed` (added after the first release) records that a loading timeout took the player
//! out of the queue because it did not load: `ended` names the loading session and `reason`
//! the code to tell (`loading_not_completed`). An instance that predates it decodes such an
//! entry as malformed, which every caller treats as "no entry" (see docs/design.md, rolling
//! upgrades).

use uuid::Uuid;

use crate::protocol::ErrorCode;

/// Where an entry says its player is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Waiting in the queue of `mode`.
    Queued,
    /// In the loading session `loading`.
    Loading {
        /// The loading session.
        loading: Uuid,
    },
    /// Out of the queue: the loading session `loading` timed out before this player
    /// reported `loading_complete` (the players who loaded were requeued). Kept until the
    /// session tells its client or its lease runs out, so a session that missed the notice
    /// still tells the right `code`.
    Removed {
        /// The loading session the player was removed from.
        loading: Uuid,
        /// What the client is told.
        code: ErrorCode,
    },
    /// Matched: the loading session `loading` got a game server.
    Matched {
        /// The finished loading session.
        loading: Uuid,
        /// The game server's session id.
        session_id: Uuid,
        /// The game server's address.
        server_address: String,
    },
}

/// One decoded entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerEntry {
    /// Where the player is.
    pub place: Place,
    /// The mode the entry belongs to.
    pub mode: String,
    /// The session token that owns the entry.
    pub owner: Uuid,
    /// Until when the entry is alive without renewal (unix ms).
    pub lease_deadline_ms: u64,
    /// The last loading session the player was requeued from, and why.
    pub last_requeue: Option<Requeue>,
}

/// A loading session a player was put back in the queue from, and the reason it was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requeue {
    /// The loading session that ended.
    pub loading: Uuid,
    /// Why, as the client sees it.
    pub code: ErrorCode,
}

impl PlayerEntry {
    /// Decodes an entry; `None` for anything malformed (which callers treat as absent).
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut fields = text.split('|');
        let state = fields.next()?;
        let mode = fields.next()?.to_owned();
        let owner = Uuid::parse_str(fields.next()?).ok()?;
        let lease_deadline_ms = fields.next()?.parse().ok()?;
        let loading = fields.next().unwrap_or("");
        let session = fields.next().unwrap_or("");
        let address = fields.next().unwrap_or("");
        let ended = fields.next().and_then(|id| Uuid::parse_str(id).ok());
        let reason = fields.next().and_then(ErrorCode::from_name);
        let last_requeue = ended
            .zip(reason)
            .map(|(loading, code)| Requeue { loading, code });
        let place = match state {
            "queued" => Place::Queued,
            // Removal has one reason today; a reason this version does not know still means
            // the player is out of the queue.
            "removed" => Place::Removed {
                loading: ended?,
                code: reason.unwrap_or(ErrorCode::LoadingNotCompleted),
            },
            "loading" => Place::Loading {
                loading: Uuid::parse_str(loading).ok()?,
            },
            "matched" => Place::Matched {
                loading: Uuid::parse_str(loading).ok()?,
                session_id: Uuid::parse_str(session).ok()?,
                server_address: address.to_owned(),
            },
            _ => return None,
        };
        Some(Self {
            place,
            mode,
            owner,
            lease_deadline_ms,
            last_requeue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a11";
    const LOADING: &str = "0b9d1c3e-1f4a-4f1e-8d2c-5a6b7c8d9e0f";

    /// Goal: each state the scripts write decodes to the matching place.
    #[test]
    fn decodes_every_state() {
        let queued = format!("queued|Normal_1v1|{OWNER}|1000|||");
        let entry = PlayerEntry::decode(queued.as_bytes()).unwrap();
        assert_eq!(entry.place, Place::Queued);
        assert_eq!(entry.lease_deadline_ms, 1000);
        let loading = format!("loading|Normal_1v1|{OWNER}|1000|{LOADING}||");
        assert!(matches!(
            PlayerEntry::decode(loading.as_bytes()).unwrap().place,
            Place::Loading { .. }
        ));
        let matched = format!("matched|Normal_1v1|{OWNER}|1000|{LOADING}|{OWNER}|10.0.0.1:7777");
        assert!(matches!(
            PlayerEntry::decode(matched.as_bytes()).unwrap().place,
            Place::Matched { ref server_address, .. } if server_address == "10.0.0.1:7777"
        ));
    }

    /// Goal: a player removed by a loading timeout decodes with the loading session it was
    /// removed from and the code to tell, also when the reason is one this version does not
    /// know; a removal that names no loading session is malformed.
    #[test]
    fn decodes_a_removed_entry() {
        let removed = format!("removed|Normal_2v2|{OWNER}|1000||||{LOADING}|loading_not_completed");
        let entry = PlayerEntry::decode(removed.as_bytes()).unwrap();
        let loading = Uuid::parse_str(LOADING).unwrap();
        let code = ErrorCode::LoadingNotCompleted;
        assert_eq!(entry.place, Place::Removed { loading, code });
        assert_eq!(entry.mode, "Normal_2v2");
        let future = format!("removed|Normal_2v2|{OWNER}|1000||||{LOADING}|kicked_for_lag");
        let entry = PlayerEntry::decode(future.as_bytes()).unwrap();
        assert_eq!(entry.place, Place::Removed { loading, code });
        let nameless = format!("removed|Normal_2v2|{OWNER}|1000||||");
        assert_eq!(PlayerEntry::decode(nameless.as_bytes()), None);
    }

    /// Goal: garbage never decodes and never panics.
    #[test]
    fn malformed_entries_are_none() {
        for raw in [
            "".to_owned(),
            "queued".to_owned(),
            format!("flying|m|{OWNER}|1|||"),
            "queued|m|not-a-uuid|1|||".to_owned(),
            format!("queued|m|{OWNER}|soon|||"),
            format!("loading|m|{OWNER}|1|||"),
        ] {
            assert_eq!(PlayerEntry::decode(raw.as_bytes()), None, "{raw}");
        }
        assert_eq!(PlayerEntry::decode(&[0xff, 0xfe]), None);
    }
}
