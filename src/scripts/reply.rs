//! The toolkit every script's reply parser is written with: a walker over an array reply
//! that checks each element as it is taken, and the error a refused reply becomes.
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
pub(super) struct Fields<'a> {
    /// The script whose reply it is, named in every error.
    script: &'static str,
    /// The whole reply, rendered into every error.
    whole: &'a Reply,
    /// The elements not taken yet.
    items: std::slice::Iter<'a, Reply>,
}

impl<'a> Fields<'a> {
    /// Starts on an array reply and returns its tag (first element).
    pub(super) fn open(
        script: &'static str,
        reply: &'a Reply,
    ) -> Result<(String, Self), ReplyError> {
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

    /// An error about this reply.
    pub(super) fn fail(&self, reason: impl Into<String>) -> ReplyError {
        error(self.script, self.whole, reason)
    }

    fn next(&mut self, what: &str) -> Result<&'a Reply, ReplyError> {
        self.items
            .next()
            .ok_or_else(|| self.fail(format!("missing {what}")))
    }

    /// The next element as UTF-8 text.
    pub(super) fn text(&mut self, what: &str) -> Result<String, ReplyError> {
        let item = self.next(what)?;
        item.as_text()
            .map(str::to_owned)
            .ok_or_else(|| self.fail(format!("{what} is not text")))
    }

    /// The next element as a UUID.
    pub(super) fn uuid(&mut self, what: &str) -> Result<Uuid, ReplyError> {
        let text = self.text(what)?;
        Uuid::parse_str(&text).map_err(|_| self.fail(format!("{what} {text:?} is not a UUID")))
    }

    /// A game mode name: non-empty, bounded, of the characters configs allow.
    pub(super) fn mode(&mut self, what: &str) -> Result<String, ReplyError> {
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
    pub(super) fn optional_uuid(&mut self, what: &str) -> Result<Option<Uuid>, ReplyError> {
        let text = self.text(what)?;
        if text.is_empty() {
            return Ok(None);
        }
        Uuid::parse_str(&text)
            .map(Some)
            .map_err(|_| self.fail(format!("{what} {text:?} is not a UUID")))
    }

    /// A non-negative integer, given as an integer reply or as decimal text (HSCAN cursors).
    pub(super) fn count(&mut self, what: &str) -> Result<u64, ReplyError> {
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
    pub(super) fn members(&mut self) -> Result<Vec<Member>, ReplyError> {
        let mut members = Vec::new();
        while self.items.len() > 0 {
            let player = self.uuid("player id")?;
            let owner = self.uuid("owner token")?;
            members.push(Member { player, owner });
        }
        Ok(members)
    }

    /// The remaining elements as player ids.
    pub(super) fn players(&mut self) -> Result<Vec<Uuid>, ReplyError> {
        let mut players = Vec::new();
        while self.items.len() > 0 {
            players.push(self.uuid("player id")?);
        }
        Ok(players)
    }

    /// Fails when elements remain.
    pub(super) fn end(self) -> Result<(), ReplyError> {
        match self.items.len() {
            0 => Ok(()),
            extra => Err(self.fail(format!("{extra} unexpected extra element(s)"))),
        }
    }
}

/// A refusal of `reply` from `script` for `reason`.
pub(super) fn error(script: &'static str, reply: &Reply, reason: impl Into<String>) -> ReplyError {
    ReplyError {
        script,
        reason: reason.into(),
        reply: reply.to_string(),
    }
}

/// A refusal of a tag `script` never returns.
pub(super) fn unknown_tag(script: &'static str, reply: &Reply, tag: &str) -> ReplyError {
    error(script, reply, format!("unknown tag {tag:?}"))
}

/// Checks a group's size and that no player appears twice.
pub(super) fn check_group(
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
pub(super) fn check_distinct(
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

/// A reply that names a mode the service does not know, as a parse error. The reply is not
/// rendered: the mode name says what was wrong.
pub(super) fn unknown_mode(script: &'static str, mode: &str) -> ReplyError {
    ReplyError {
        script,
        reason: format!("unknown mode {mode:?}"),
        reply: String::new(),
    }
}
