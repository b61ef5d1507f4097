//! Total parsers: a raw script reply becomes a typed outcome or a [`ReplyError`].
//!
//! Replies are untrusted input: Redis cuts a Lua array at its first nil, a fault may garble
//! an element or add one. Every parser checks the exact shape - tag, length, UUIDs, counts -
//! and never indexes, unwraps or pops.

use std::fmt;

use uuid::Uuid;

use crate::store::Reply;

/// A player of a group together with the session token that owns it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Member {
    /// The player.
    pub player: Uuid,
    /// The session that owns the player's entry; notices are delivered to it only.
    pub owner: Uuid,
}

/// A reply that does not have the shape its script promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyError {
    /// The script whose reply it was.
    pub script: &'static str,
    /// What was wrong.
    pub reason: String,
    /// The reply, rendered for the log (bounded).
    pub reply: String,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad reply from {}: {} (reply: {})",
            self.script, self.reason, self.reply
        )
    }
}

impl std::error::Error for ReplyError {}

/// Walks the elements of an array reply, checking each as it is taken.
struct Fields<'a> {
    script: &'static str,
    whole: &'a Reply,
    items: std::slice::Iter<'a, Reply>,
}

impl<'a> Fields<'a> {
    /// Starts on an array reply and returns its tag (first element).
    fn open(script: &'static str, reply: &'a Reply) -> Result<(String, Self), ReplyError> {
        let Reply::Array(items) = reply else {
            return Err(error(script, reply, "not an array"));
        };
        let mut fields = Self {
            script,
            whole: reply,
            items: items.iter(),
        };
        let tag = fields.text("tag")?;
        Ok((tag, fields))
    }

    fn fail(&self, reason: impl Into<String>) -> ReplyError {
        error(self.script, self.whole, reason)
    }

    fn next(&mut self, what: &str) -> Result<&'a Reply, ReplyError> {
        self.items
            .next()
            .ok_or_else(|| self.fail(format!("missing {what}")))
    }

    fn text(&mut self, what: &str) -> Result<String, ReplyError> {
        let item = self.next(what)?;
        item.as_text()
            .map(str::to_owned)
            .ok_or_else(|| self.fail(format!("{what} is not text")))
    }

    fn uuid(&mut self, what: &str) -> Result<Uuid, ReplyError> {
        let text = self.text(what)?;
        Uuid::parse_str(&text).map_err(|_| self.fail(format!("{what} {text:?} is not a UUID")))
    }

    /// A game mode name: non-empty, bounded, of the characters configs allow.
    fn mode(&mut self, what: &str) -> Result<String, ReplyError> {
        let text = self.text(what)?;
        let valid = !text.is_empty()
            && text.len() <= crate::limits::MAX_MODE_NAME_BYTES
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(text)
        } else {
            Err(self.fail(format!("{what} {text:?} is not a mode name")))
        }
    }

    /// A UUID, or `None` for the empty string scripts write for "no id".
    fn optional_uuid(&mut self, what: &str) -> Result<Option<Uuid>, ReplyError> {
        let text = self.text(what)?;
        if text.is_empty() {
            return Ok(None);
        }
        Uuid::parse_str(&text)
            .map(Some)
            .map_err(|_| self.fail(format!("{what} {text:?} is not a UUID")))
    }

    /// A non-negative integer, given as an integer reply or as decimal text (HSCAN cursors).
    fn count(&mut self, what: &str) -> Result<u64, ReplyError> {
        match self.next(what)? {
            Reply::Int(value) => {
                u64::try_from(*value).map_err(|_| self.fail(format!("{what} is negative")))
            }
            other => other
                .as_text()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| self.fail(format!("{what} is not a count"))),
        }
    }

    /// The remaining elements as (player, owner) pairs.
    fn members(&mut self) -> Result<Vec<Member>, ReplyError> {
        let mut members = Vec::new();
        while self.items.len() > 0 {
            let player = self.uuid("player id")?;
            let owner = self.uuid("owner token")?;
            members.push(Member { player, owner });
        }
        Ok(members)
    }

    /// The remaining elements as player ids.
    fn players(&mut self) -> Result<Vec<Uuid>, ReplyError> {
        let mut players = Vec::new();
        while self.items.len() > 0 {
            players.push(self.uuid("player id")?);
        }
        Ok(players)
    }

    /// Fails when elements remain.
    fn end(self) -> Result<(), ReplyError> {
        match self.items.len() {
            0 => Ok(()),
            extra => Err(self.fail(format!("{extra} unexpected extra element(s)"))),
        }
    }
}

fn error(script: &'static str, reply: &Reply, reason: impl Into<String>) -> ReplyError {
    ReplyError {
        script,
        reason: reason.into(),
        reply: reply.to_string(),
    }
}

fn unknown_tag(script: &'static str, reply: &Reply, tag: &str) -> ReplyError {
    error(script, reply, format!("unknown tag {tag:?}"))
}

/// Checks a group's size and that no player appears twice.
fn check_group(
    script: &'static str,
    reply: &Reply,
    members: &[Member],
    expected: usize,
) -> Result<(), ReplyError> {
    if members.len() != expected {
        return Err(error(
            script,
            reply,
            format!("{} players, expected {expected}", members.len()),
        ));
    }
    check_distinct(script, reply, members)
}

/// Checks that no player appears twice.
fn check_distinct(
    script: &'static str,
    reply: &Reply,
    members: &[Member],
) -> Result<(), ReplyError> {
    let distinct: std::collections::BTreeSet<Uuid> = members.iter().map(|m| m.player).collect();
    if distinct.len() != members.len() {
        return Err(error(script, reply, "a player appears twice"));
    }
    Ok(())
}

/// A reply that names a mode the service does not know, as a parse error.
pub fn unknown_mode(script: &'static str, mode: &str) -> ReplyError {
    ReplyError {
        script,
        reason: format!("unknown mode {mode:?}"),
        reply: String::new(),
    }
}

/// What `enqueue.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnqueueReply {
    /// The player is now queued; `queue_len` players wait in the mode.
    Enqueued {
        /// Queue length after the insert.
        queue_len: u64,
    },
    /// This session's entry already exists (an earlier attempt succeeded).
    Already {
        /// `queued` or `loading`.
        state: String,
        /// The mode of the entry.
        mode: String,
        /// The loading session, when loading.
        loading: Option<Uuid>,
    },
    /// A live entry of another session holds this player.
    Taken,
    /// An expired entry still sits in a loading session; the sweep will free it.
    Busy,
    /// The queue is at its length limit.
    Full,
}

/// Parses the reply of `enqueue.lua`.
pub fn parse_enqueue(reply: &Reply) -> Result<EnqueueReply, ReplyError> {
    const SCRIPT: &str = "enqueue";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    let outcome = match tag.as_str() {
        "enqueued" => EnqueueReply::Enqueued {
            queue_len: fields.count("queue length")?,
        },
        "already" => {
            let state = fields.text("state")?;
            if state != "queued" && state != "loading" {
                return Err(fields.fail(format!("state {state:?}")));
            }
            let mode = fields.mode("mode")?;
            let loading = fields.optional_uuid("loading id")?;
            EnqueueReply::Already {
                state,
                mode,
                loading,
            }
        }
        "taken" => EnqueueReply::Taken,
        "busy" => EnqueueReply::Busy,
        "full" => EnqueueReply::Full,
        other => return Err(unknown_tag(SCRIPT, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}

/// What `leave_queue.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReply {
    /// The entry was removed.
    Left,
    /// The player is in a loading session; cancel it instead.
    Loading {
        /// The loading session.
        loading: Uuid,
        /// The mode of the loading session.
        mode: String,
    },
    /// The player is queued in another mode; retry with that mode's queue.
    OtherMode {
        /// The mode the entry is in.
        mode: String,
    },
    /// No entry of this session exists.
    Absent,
}

/// Parses the reply of `leave_queue.lua`.
pub fn parse_leave(reply: &Reply) -> Result<LeaveReply, ReplyError> {
    const SCRIPT: &str = "leave_queue";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    let outcome = match tag.as_str() {
        "left" => {
            fields.text("previous state")?;
            LeaveReply::Left
        }
        "loading" => {
            let loading = fields.uuid("loading id")?;
            let mode = fields.mode("mode")?;
            LeaveReply::Loading { loading, mode }
        }
        "other_mode" => LeaveReply::OtherMode {
            mode: fields.mode("mode")?,
        },
        "none" => LeaveReply::Absent,
        other => return Err(unknown_tag(SCRIPT, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}

/// What `try_match.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryMatchReply {
    /// A loading session was created with these players.
    Matched {
        /// The new loading session.
        loading: Uuid,
        /// Dead entries skipped on the way.
        dropped: u64,
        /// The group, exactly the mode's player count.
        members: Vec<Member>,
    },
    /// The caller's lock expired: nothing was changed.
    LockLost,
    /// Not enough live players; the popped ones are back.
    Waiting {
        /// Queue length now.
        queue_len: u64,
        /// Dead entries removed on the way.
        dropped: u64,
    },
}

/// Parses the reply of `try_match.lua` for a mode of `players_per_match`.
pub fn parse_try_match(
    reply: &Reply,
    players_per_match: usize,
) -> Result<TryMatchReply, ReplyError> {
    const SCRIPT: &str = "try_match";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    match tag.as_str() {
        "matched" => {
            let loading = fields.uuid("loading id")?;
            let dropped = fields.count("dropped")?;
            let members = fields.members()?;
            check_group(SCRIPT, reply, &members, players_per_match)?;
            Ok(TryMatchReply::Matched {
                loading,
                dropped,
                members,
            })
        }
        "waiting" => {
            let queue_len = fields.count("queue length")?;
            let dropped = fields.count("dropped")?;
            fields.end()?;
            Ok(TryMatchReply::Waiting { queue_len, dropped })
        }
        "lock_lost" => fields.end().map(|()| TryMatchReply::LockLost),
        other => Err(unknown_tag(SCRIPT, reply, other)),
    }
}

/// What `loading_complete.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompleteReply {
    /// Marked ready; others still load.
    Waiting,
    /// Everyone is ready: this caller must allocate a game server for the group.
    AllReady {
        /// The group.
        members: Vec<Member>,
    },
    /// This player was already marked ready.
    AlreadyReady,
    /// The player is not (or no longer) in this loading session.
    NotMember,
    /// The loading session no longer exists.
    Gone,
}

/// Parses the reply of `loading_complete.lua` for a mode of `players_per_match`.
pub fn parse_complete(
    reply: &Reply,
    players_per_match: usize,
) -> Result<CompleteReply, ReplyError> {
    const SCRIPT: &str = "loading_complete";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    let outcome = match tag.as_str() {
        "waiting" => {
            let ready = fields.count("ready")?;
            let total = fields.count("total")?;
            if ready >= total {
                return Err(fields.fail(format!("waiting with {ready} of {total} ready")));
            }
            CompleteReply::Waiting
        }
        "all_ready" => {
            fields.text("mode")?;
            let members = fields.members()?;
            check_group(SCRIPT, reply, &members, players_per_match)?;
            return Ok(CompleteReply::AllReady { members });
        }
        "already_ready" => CompleteReply::AlreadyReady,
        "not_member" => CompleteReply::NotMember,
        "gone" => CompleteReply::Gone,
        other => return Err(unknown_tag(SCRIPT, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}

/// What `finish_match.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReply {
    /// These players are matched (entries record the game server).
    Matched {
        /// The players whose entries were still in the loading session.
        members: Vec<Member>,
    },
    /// The loading session ended meanwhile (cancelled or swept).
    Gone,
}

/// Parses the reply of `finish_match.lua` for a mode of `players_per_match`.
pub fn parse_finish(reply: &Reply, players_per_match: usize) -> Result<FinishReply, ReplyError> {
    const SCRIPT: &str = "finish_match";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    match tag.as_str() {
        "matched" => {
            let members = fields.members()?;
            if members.len() > players_per_match {
                return Err(error(SCRIPT, reply, "more players than the mode holds"));
            }
            check_distinct(SCRIPT, reply, &members)?;
            Ok(FinishReply::Matched { members })
        }
        "gone" => fields.end().map(|()| FinishReply::Gone),
        other => Err(unknown_tag(SCRIPT, reply, other)),
    }
}

/// What `cancel_loading.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReply {
    /// The loading session ended; `requeued` players are back in the queue, `removed` ones
    /// (those who did not load, at a loading timeout) are out of it.
    Cancelled {
        /// Players dropped because their lease ran out.
        dropped: u64,
        /// Players requeued.
        requeued: Vec<Member>,
        /// Players taken out of the queue.
        removed: Vec<Member>,
    },
    /// The sweep's condition did not hold (deadline not passed, or not allocating).
    NotExpired,
    /// The leaving player is not in this loading session.
    NotMember,
    /// The loading session no longer exists.
    Gone,
}

/// Parses the reply of `cancel_loading.lua` for a mode of `players_per_match`.
pub fn parse_cancel(reply: &Reply, players_per_match: usize) -> Result<CancelReply, ReplyError> {
    const SCRIPT: &str = "cancel_loading";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    let outcome = match tag.as_str() {
        "cancelled" => {
            let dropped = fields.count("dropped")?;
            let requeued_count = fields.count("requeued count")?;
            let mut requeued = fields.members()?;
            if requeued.len() > players_per_match {
                return Err(error(SCRIPT, reply, "more players than the mode holds"));
            }
            check_distinct(SCRIPT, reply, &requeued)?;
            let split = usize::try_from(requeued_count)
                .ok()
                .filter(|count| *count <= requeued.len())
                .ok_or_else(|| error(SCRIPT, reply, "requeued count exceeds the players"))?;
            let removed = requeued.split_off(split);
            return Ok(CancelReply::Cancelled {
                dropped,
                requeued,
                removed,
            });
        }
        "not_expired" => CancelReply::NotExpired,
        "not_member" => CancelReply::NotMember,
        "gone" => CancelReply::Gone,
        other => return Err(unknown_tag(SCRIPT, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}

/// What `renew_leases.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewReply {
    /// Entries renewed.
    pub renewed: u64,
    /// Players whose entry is gone or owned by another session.
    pub lost: Vec<Uuid>,
}

/// Parses the reply of `renew_leases.lua`.
pub fn parse_renew(reply: &Reply) -> Result<RenewReply, ReplyError> {
    parse_renewal("renew_leases", reply)
}

/// Parses the reply of `renew_player_leases.lua` (the same shape as `renew_leases.lua`).
pub fn parse_renew_player_leases(reply: &Reply) -> Result<RenewReply, ReplyError> {
    parse_renewal("renew_player_leases", reply)
}

/// `{'renewed', count, lost player...}` from `script`.
fn parse_renewal(script: &'static str, reply: &Reply) -> Result<RenewReply, ReplyError> {
    let (tag, mut fields) = Fields::open(script, reply)?;
    if tag != "renewed" {
        return Err(unknown_tag(script, reply, &tag));
    }
    let renewed = fields.count("renewed")?;
    let lost = fields.players()?;
    Ok(RenewReply { renewed, lost })
}

/// What one `sweep_players.lua` page did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepReply {
    /// The HSCAN cursor to continue from; 0 when the pass is complete.
    pub cursor: u64,
    /// Dead entries removed.
    pub removed: u64,
}

/// Parses the reply of `sweep_players.lua`.
pub fn parse_sweep(reply: &Reply) -> Result<SweepReply, ReplyError> {
    const SCRIPT: &str = "sweep_players";
    let (tag, mut fields) = Fields::open(SCRIPT, reply)?;
    if tag != "swept" {
        return Err(unknown_tag(SCRIPT, reply, &tag));
    }
    let cursor = fields.count("cursor")?;
    let removed = fields.count("removed")?;
    fields.end()?;
    Ok(SweepReply { cursor, removed })
}

/// Parses the reply of `release_lock.lua`: whether this token still held the lock.
pub fn parse_release(reply: &Reply) -> Result<bool, ReplyError> {
    match reply {
        Reply::Int(0) => Ok(false),
        Reply::Int(1) => Ok(true),
        other => Err(error("release_lock", other, "expected 0 or 1")),
    }
}

#[cfg(test)]
#[path = "replies_tests.rs"]
mod tests;
