//! The `[allocator.agones]` settings: where the Agones allocator service is, what to ask it
//! for, and how to prove who we are; checked at start-up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How to reach and query the Agones allocator service (`allocator.kind = "agones"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgonesSettings {
    /// Base URL of the allocator service, `https://host:port` (or `http://` when the service
    /// runs with TLS disabled); requests go to `{url}/gameserverallocation`.
    pub url: String,
    /// The Kubernetes namespace of the Fleet's GameServers.
    pub namespace: String,
    /// Ordered GameServer selectors; Agones tries each in turn. None: any Ready GameServer
    /// of the namespace.
    pub selectors: Vec<SelectorSettings>,
    /// `Packed` (fill nodes first, Agones's default) or `Distributed`.
    pub scheduling: Scheduling,
    /// The GameServer port players connect to, by name; the first port when unset.
    pub port_name: Option<String>,
    /// Prefix of the metadata keys the players and session id are sent under:
    /// `{prefix}/session-id` (label and annotation) and `{prefix}/players` (annotation).
    pub metadata_prefix: String,
    /// The HTTP status the allocator answers when no GameServer matches (its Helm value
    /// `agones.allocator.service.http.unallocatedStatusCode`, 429 by default).
    pub unallocated_status: u16,
    /// PEM file of the CA that signed the allocator's server certificate (the
    /// `allocator-tls-ca` secret); required for `https`.
    pub tls_ca_file: Option<String>,
    /// PEM client certificate for mutual TLS (e.g. from the `allocator-client.default`
    /// secret); with `tls_client_key_file`, or neither when mTLS is disabled.
    pub tls_client_cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_client_cert_file`.
    pub tls_client_key_file: Option<String>,
    /// The name the server certificate is checked against instead of the URL's host (e.g.
    /// the load balancer IP the Helm chart issued the certificate for).
    pub tls_server_name: Option<String>,
}

/// One GameServer selector of the allocation request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorSettings {
    /// Labels the GameServer must carry, e.g. `{"agones.dev/fleet" = "arena"}`.
    pub match_labels: BTreeMap<String, String>,
    /// `Ready` (default) or `Allocated`, for GameServers that host several matches.
    pub game_server_state: GameServerState,
}

/// Which GameServers a selector considers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameServerState {
    /// Ready GameServers, moved to Allocated by the allocation.
    #[default]
    Ready,
    /// Already Allocated GameServers with room for another match.
    Allocated,
}

/// How Agones picks among matching GameServers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheduling {
    /// On the most used nodes first, so empty nodes can be scaled down.
    #[default]
    Packed,
    /// Spread over nodes.
    Distributed,
}

/// The longest DNS subdomain Kubernetes accepts as a label key prefix.
const MAX_METADATA_PREFIX_BYTES: usize = 253;
/// The longest Kubernetes namespace name (a DNS label).
const MAX_NAMESPACE_BYTES: usize = 63;

impl Default for AgonesSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            namespace: "default".to_owned(),
            selectors: Vec::new(),
            scheduling: Scheduling::Packed,
            port_name: None,
            metadata_prefix: "match-server".to_owned(),
            unallocated_status: 429,
            tls_ca_file: None,
            tls_client_cert_file: None,
            tls_client_key_file: None,
            tls_server_name: None,
        }
    }
}

impl AgonesSettings {
    /// Checks the values a start-up can check without reading files; the message names
    /// the setting and says what is expected.
    pub fn validate(&self) -> Result<(), String> {
        let https = self.check_url()?;
        if !is_dns_label(&self.namespace) || self.namespace.len() > MAX_NAMESPACE_BYTES {
            return Err(format!(
                "allocator.agones.namespace {:?} is not a Kubernetes namespace name",
                self.namespace
            ));
        }
        let prefix_ok = !self.metadata_prefix.is_empty()
            && self.metadata_prefix.len() <= MAX_METADATA_PREFIX_BYTES
            && self.metadata_prefix.split('.').all(is_dns_label);
        if !prefix_ok {
            return Err(format!(
                "allocator.agones.metadata_prefix {:?} must be a DNS subdomain (a-z 0-9 - .)",
                self.metadata_prefix
            ));
        }
        if !(400..=599).contains(&self.unallocated_status) {
            return Err(
                "allocator.agones.unallocated_status must be an HTTP error status \
                 (400-599)"
                    .into(),
            );
        }
        if self.port_name.as_deref() == Some("") {
            return Err(
                "allocator.agones.port_name must not be empty (unset it for the \
                 first port)"
                    .into(),
            );
        }
        self.check_tls(https)
    }

    /// The URL is `http(s)://authority` with nothing after the host but an optional path
    /// prefix; whether it is `https`.
    fn check_url(&self) -> Result<bool, String> {
        let invalid = |why: &str| {
            format!(
                "allocator.agones.url {:?} {why}: expected the allocator service's base URL, \
                 e.g. https://agones-allocator.agones-system.svc:443",
                self.url
            )
        };
        if self.url.is_empty() {
            return Err(invalid("is missing"));
        }
        let uri: hyper::Uri = self.url.parse().map_err(|_| invalid("is not a URL"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("has no host"));
        }
        if uri.query().is_some() {
            return Err(invalid("has a query"));
        }
        match uri.scheme_str() {
            Some("https") => Ok(true),
            Some("http") => Ok(false),
            _ => Err(invalid("is neither http nor https")),
        }
    }

    /// TLS files fit the scheme: a CA for `https`, a client certificate with its key.
    fn check_tls(&self, https: bool) -> Result<(), String> {
        let files = [
            &self.tls_ca_file,
            &self.tls_client_cert_file,
            &self.tls_client_key_file,
        ];
        if !https {
            if files.iter().any(|file| file.is_some()) || self.tls_server_name.is_some() {
                return Err("allocator.agones.tls_* settings need an https url".into());
            }
            return Ok(());
        }
        if self.tls_ca_file.is_none() {
            return Err(
                "allocator.agones.tls_ca_file is required for an https url: the \
                 PEM CA of the allocator's certificate (secret allocator-tls-ca, key \
                 tls-ca.crt)"
                    .into(),
            );
        }
        if self.tls_client_cert_file.is_some() != self.tls_client_key_file.is_some() {
            return Err(
                "allocator.agones.tls_client_cert_file and tls_client_key_file go \
                 together (both for mTLS, neither without)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A DNS label: 1-63 of a-z 0-9 -, not starting or ending with -.
fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && !text.starts_with('-')
        && !text.ends_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https() -> AgonesSettings {
        AgonesSettings {
            url: "https://10.0.0.1:443".to_owned(),
            tls_ca_file: Some("/ca.crt".to_owned()),
            ..AgonesSettings::default()
        }
    }

    /// Goal: a usable configuration passes, and each bad value is refused with a message
    /// naming the setting.
    #[test]
    fn bad_values_are_named() {
        assert_eq!(https().validate(), Ok(()));
        let plain = AgonesSettings {
            url: "http://agones-allocator:8080".to_owned(),
            ..AgonesSettings::default()
        };
        assert_eq!(plain.validate(), Ok(()));
        let cases: Vec<(AgonesSettings, &str)> = vec![
            (AgonesSettings::default(), "url"),
            (
                AgonesSettings {
                    url: "ftp://x".to_owned(),
                    ..https()
                },
                "neither http nor https",
            ),
            (
                AgonesSettings {
                    tls_ca_file: None,
                    ..https()
                },
                "tls_ca_file",
            ),
            (
                AgonesSettings {
                    tls_client_cert_file: Some("/c.crt".to_owned()),
                    ..https()
                },
                "go together",
            ),
            (
                AgonesSettings {
                    tls_ca_file: Some("/ca.crt".to_owned()),
                    ..plain.clone()
                },
                "need an https url",
            ),
            (
                AgonesSettings {
                    namespace: "Game_Servers".to_owned(),
                    ..https()
                },
                "namespace",
            ),
            (
                AgonesSettings {
                    metadata_prefix: "Match/Server".to_owned(),
                    ..https()
                },
                "metadata_prefix",
            ),
            (
                AgonesSettings {
                    unallocated_status: 200,
                    ..https()
                },
                "unallocated_status",
            ),
            (
                AgonesSettings {
                    port_name: Some(String::new()),
                    ..https()
                },
                "port_name",
            ),
        ];
        for (settings, needle) in cases {
            let error = settings.validate().unwrap_err();
            assert!(error.contains(needle), "{settings:?} gave {error:?}");
        }
    }
}
