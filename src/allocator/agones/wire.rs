//! The JSON of the Agones allocator service's REST gateway (`POST /gameserverallocation`),
//! as generated from `proto/allocation/allocation.proto` (field names in lowerCamelCase,
//! enums as their names), and the mapping of its answer to a `server_address`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::settings::{AgonesSettings, GameServerState, Scheduling};
use crate::allocator::{AllocationError, is_host_port};

/// `AllocationRequest`: which GameServer, and the metadata patched onto it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationRequest<'a> {
    /// The namespace of the Fleet.
    pub namespace: &'a str,
    /// Ordered selectors; left out when none are configured (Agones then takes any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub game_server_selectors: Vec<GameServerSelector<'a>>,
    /// `Packed` or `Distributed`.
    pub scheduling: &'static str,
    /// Labels and annotations the allocation adds to the GameServer.
    pub metadata: MetaPatch,
}

/// `GameServerSelector`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GameServerSelector<'a> {
    /// Labels to match.
    pub match_labels: &'a BTreeMap<String, String>,
    /// `READY` or `ALLOCATED`.
    pub game_server_state: &'static str,
}

/// `MetaPatch`: how the matchmaker tells the game server who plays in which session.
#[derive(Debug, Default, Serialize)]
pub struct MetaPatch {
    /// Kubernetes labels (values of at most 63 characters): the session id, so operators
    /// can find a session's GameServer with a label selector.
    pub labels: BTreeMap<String, String>,
    /// Kubernetes annotations: the session id and the players, comma separated.
    pub annotations: BTreeMap<String, String>,
}

/// `AllocationResponse`, the fields the matchmaker uses (unknown ones are ignored, missing
/// ones are empty, as the gateway may leave out empty fields).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationResponse {
    /// The allocated GameServer, for logs.
    #[serde(default)]
    pub game_server_name: String,
    /// Primary address of the GameServer (its node's).
    #[serde(default)]
    pub address: String,
    /// The GameServer's ports.
    #[serde(default)]
    pub ports: Vec<GameServerStatusPort>,
}

/// `GameServerStatusPort`.
#[derive(Debug, Deserialize)]
pub struct GameServerStatusPort {
    /// The port's name in the GameServer spec (`default` unless named).
    #[serde(default)]
    pub name: String,
    /// The host port players connect to.
    pub port: i64,
}

/// The metadata key of the session id (label and annotation).
pub fn session_id_key(prefix: &str) -> String {
    format!("{prefix}/session-id")
}

/// The metadata key of the players (annotation).
pub fn players_key(prefix: &str) -> String {
    format!("{prefix}/players")
}

/// The request for a GameServer for `players` in session `session_id`.
pub fn request<'a>(
    settings: &'a AgonesSettings,
    session_id: Uuid,
    players: &[Uuid],
) -> AllocationRequest<'a> {
    let session = session_id.to_string();
    let players = players
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let prefix = &settings.metadata_prefix;
    let metadata = MetaPatch {
        labels: BTreeMap::from([(session_id_key(prefix), session.clone())]),
        annotations: BTreeMap::from([
            (session_id_key(prefix), session),
            (players_key(prefix), players),
        ]),
    };
    AllocationRequest {
        namespace: &settings.namespace,
        game_server_selectors: settings
            .selectors
            .iter()
            .map(|selector| GameServerSelector {
                match_labels: &selector.match_labels,
                game_server_state: match selector.game_server_state {
                    GameServerState::Ready => "READY",
                    GameServerState::Allocated => "ALLOCATED",
                },
            })
            .collect(),
        scheduling: match settings.scheduling {
            Scheduling::Packed => "Packed",
            Scheduling::Distributed => "Distributed",
        },
        metadata,
    }
}

/// The `host:port` players connect to: the GameServer's address and its port named
/// `port_name` (the first port when unset); IPv6 addresses in brackets.
pub fn server_address(
    body: &[u8],
    port_name: Option<&str>,
) -> Result<(String, AllocationResponse), AllocationError> {
    let response: AllocationResponse =
        serde_json::from_slice(body).map_err(|e| AllocationError::MalformedBody(e.to_string()))?;
    let port = match port_name {
        Some(name) => response.ports.iter().find(|port| port.name == name),
        None => response.ports.first(),
    };
    let Some(port) = port else {
        return Err(AllocationError::MalformedBody(format!(
            "GameServer {:?} has no port {}",
            response.game_server_name,
            port_name.unwrap_or("at all")
        )));
    };
    let port = u16::try_from(port.port)
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| {
            AllocationError::MalformedBody(format!("port {} is out of range", port.port))
        })?;
    let address = if response.address.contains(':') {
        format!("[{}]:{port}", response.address)
    } else {
        format!("{}:{port}", response.address)
    };
    if !is_host_port(&address) || response.address.is_empty() {
        return Err(AllocationError::MalformedBody(format!(
            "address {:?} is not a host",
            response.address
        )));
    }
    Ok((address, response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::agones::settings::SelectorSettings;

    /// Goal: the request carries the documented field names: namespace, ordered
    /// gameServerSelectors with matchLabels and gameServerState, scheduling, and the
    /// session id and players under metadata labels and annotations.
    #[test]
    fn request_json_follows_the_allocation_proto() {
        let settings = AgonesSettings {
            namespace: "games".to_owned(),
            selectors: vec![
                SelectorSettings {
                    match_labels: BTreeMap::from([("agones.dev/fleet".into(), "arena".into())]),
                    game_server_state: GameServerState::Allocated,
                },
                SelectorSettings::default(),
            ],
            ..AgonesSettings::default()
        };
        let session = Uuid::from_u128(1);
        let players = [Uuid::from_u128(2), Uuid::from_u128(3)];
        let json = serde_json::to_value(request(&settings, session, &players)).unwrap();
        let expected = serde_json::json!({
            "namespace": "games",
            "gameServerSelectors": [
                {"matchLabels": {"agones.dev/fleet": "arena"}, "gameServerState": "ALLOCATED"},
                {"matchLabels": {}, "gameServerState": "READY"},
            ],
            "scheduling": "Packed",
            "metadata": {
                "labels": {"match-server/session-id": session.to_string()},
                "annotations": {
                    "match-server/session-id": session.to_string(),
                    "match-server/players": format!("{},{}", players[0], players[1]),
                },
            },
        });
        assert_eq!(json, expected);
        let no_selectors =
            serde_json::to_value(request(&AgonesSettings::default(), session, &players)).unwrap();
        assert!(no_selectors.get("gameServerSelectors").is_none());
    }

    /// Goal: the documented answer maps to `address:port` (the named port, or the first),
    /// IPv6 in brackets; a body without a usable address or port is malformed.
    #[test]
    fn answer_maps_to_server_address() {
        let body = br#"{"gameServerName":"arena-x","ports":[{"name":"default","port":7463},{"name":"tcp","port":7000}],"address":"1.2.3.4","nodeName":"node-name"}"#;
        assert_eq!(server_address(body, None).unwrap().0, "1.2.3.4:7463");
        assert_eq!(server_address(body, Some("tcp")).unwrap().0, "1.2.3.4:7000");
        let v6 = br#"{"ports":[{"name":"default","port":7463}],"address":"fd00::1"}"#;
        assert_eq!(server_address(v6, None).unwrap().0, "[fd00::1]:7463");
        let bad: [&[u8]; 6] = [
            b"not json",
            br#"{"address":"1.2.3.4"}"#,
            br#"{"address":"1.2.3.4","ports":[{"name":"default","port":0}]}"#,
            br#"{"address":"1.2.3.4","ports":[{"name":"default","port":70000}]}"#,
            br#"{"address":"","ports":[{"name":"default","port":7463}]}"#,
            br#"{"address":"a|b","ports":[{"name":"default","port":7463}]}"#,
        ];
        for body in bad {
            assert!(
                matches!(
                    server_address(body, None),
                    Err(AllocationError::MalformedBody(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(server_address(body, Some("udp")).is_err());
    }
}
