//! Reading `dedicated_server:<name>` registrations: the inherited contract
//! `{"address": "host:port", "status": "idle"}`, plus the optional, additive `capacity` and
//! `sessions` fields of servers that host several matches at once.

use serde::Deserialize;

use super::is_host_port;
use crate::limits;
use crate::scripts::fleet_sync::{Registration, ServerReport};
use crate::store::{Store, StoreError};

/// A registry entry as game servers write it.
#[derive(Deserialize)]
struct RegistryEntry {
    /// Where the server answers `POST /session/create`.
    address: String,
    /// `idle` accepts sessions; anything else does not.
    status: String,
    /// Sessions it can host at once; absent for legacy servers (1).
    #[serde(default)]
    capacity: Option<u32>,
    /// Sessions it hosts now; absent: 0 when idle, else all of its capacity.
    #[serde(default)]
    sessions: Option<u32>,
}

/// The status a server is indexed with when its own is not a plausible word.
const UNREADABLE_STATUS: &str = "unreadable";

/// The registration in `raw`, or `None` when it cannot be used (invalid JSON, address not
/// `host:port`): such a server is not allocatable, exactly as before the index.
pub fn parse_registration(raw: &[u8]) -> Option<Registration> {
    let entry: RegistryEntry = serde_json::from_slice(raw).ok()?;
    if !is_host_port(&entry.address) {
        return None;
    }
    let plausible = !entry.status.is_empty()
        && entry.status.len() <= limits::MAX_SERVER_STATUS_BYTES
        && entry
            .status
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let status = if plausible {
        entry.status
    } else {
        UNREADABLE_STATUS.to_owned()
    };
    let capacity = entry
        .capacity
        .unwrap_or(1)
        .clamp(1, limits::MAX_SERVER_CAPACITY);
    let sessions = entry
        .sessions
        .unwrap_or(if status == "idle" { 0 } else { capacity })
        .min(capacity);
    Some(Registration {
        address: entry.address,
        status,
        capacity,
        sessions,
    })
}

/// Reads the registration of `name` under `prefix` as a report for the index: `None`
/// registration when the key is gone or unusable.
pub async fn read_report(
    store: &dyn Store,
    prefix: &str,
    name: &str,
) -> Result<ServerReport, StoreError> {
    let raw = store.get(&format!("{prefix}{name}")).await?;
    let registration = raw.as_deref().and_then(|raw| {
        let parsed = parse_registration(raw);
        if parsed.is_none() {
            tracing::warn!(
                server = name,
                "registration is not usable JSON; not allocated"
            );
        }
        parsed
    });
    Ok(ServerReport {
        name: name.to_owned(),
        registration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a legacy registration is one slot, free when idle and full otherwise, and the
    /// additive fields give a capacity and a session count, bounded.
    #[test]
    fn registrations_map_to_slots() {
        let idle = parse_registration(br#"{"address":"10.0.0.1:7777","status":"idle"}"#).unwrap();
        assert_eq!((idle.capacity, idle.sessions), (1, 0));
        let busy = parse_registration(br#"{"address":"10.0.0.1:7777","status":"busy"}"#).unwrap();
        assert_eq!((busy.capacity, busy.sessions), (1, 1));
        let multi =
            parse_registration(br#"{"address":"h:1","status":"idle","capacity":4,"sessions":9}"#)
                .unwrap();
        assert_eq!((multi.capacity, multi.sessions), (4, 4));
        let huge = parse_registration(br#"{"address":"h:1","status":"idle","capacity":99999999}"#)
            .unwrap();
        assert_eq!(huge.capacity, limits::MAX_SERVER_CAPACITY);
        let odd = parse_registration(br#"{"address":"h:1","status":"a|b"}"#).unwrap();
        assert_eq!(odd.status, UNREADABLE_STATUS);
        assert!(parse_registration(br#"{"address":"nope","status":"idle"}"#).is_none());
        assert!(parse_registration(b"garbage").is_none());
    }
}
