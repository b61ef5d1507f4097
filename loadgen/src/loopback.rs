//! The load generator only ever talks to this machine: every address it is given (WebSocket
//! URLs, the Redis URL, the stub game server) must be a loopback address, checked before
//! anything is sent. A name is resolved and every address it resolves to must be loopback.

use std::net::{IpAddr, SocketAddr};

/// Why an address was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoopbackError {
    /// The text is not a URL or `host:port` of the expected shape.
    #[error("{what} {text:?} is malformed: {reason}")]
    Malformed {
        /// Which option carried the address.
        what: &'static str,
        /// The address as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The address is not on this machine.
    #[error(
        "{what} {text:?} is not a loopback address (only 127.0.0.0/8, ::1 and localhost are allowed: the load generator never sends traffic off this machine)"
    )]
    NotLoopback {
        /// Which option carried the address.
        what: &'static str,
        /// The address as given.
        text: String,
    },
}

/// The host and port of a `scheme://host:port/...` URL, or of `host:port`.
fn split_host_port<'a>(
    what: &'static str,
    text: &'a str,
    default_port: Option<u16>,
) -> Result<(&'a str, u16), LoopbackError> {
    let malformed = |reason: &str| LoopbackError::Malformed {
        what,
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.is_empty() {
        return Err(malformed("no host"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| malformed("unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match (port, default_port) {
        (Some(port), _) => port.parse().map_err(|_| malformed("bad port"))?,
        (None, Some(port)) => port,
        (None, None) => return Err(malformed("no port")),
    };
    if host.is_empty() {
        return Err(malformed("no host"));
    }
    Ok((host, port))
}

/// Whether a literal host is loopback; `None` when it is a name that must be resolved.
fn literal_is_loopback(host: &str) -> Option<bool> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(true);
    }
    host.parse::<IpAddr>().ok().map(|ip| ip.is_loopback())
}

/// Checks that `text` (a URL or `host:port`) names this machine; returns its socket address
/// as a literal loopback address. Names other than `localhost` are refused without lookup,
/// so no resolver is ever asked about an outside name.
pub fn loopback_addr(
    what: &'static str,
    text: &str,
    default_port: Option<u16>,
) -> Result<SocketAddr, LoopbackError> {
    let (host, port) = split_host_port(what, text, default_port)?;
    match literal_is_loopback(host) {
        Some(true) => {}
        Some(false) | None => {
            return Err(LoopbackError::NotLoopback {
                what,
                text: text.to_owned(),
            });
        }
    }
    let ip = host
        .parse::<IpAddr>()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: loopback addresses in every accepted shape pass, and keep their port.
    #[test]
    fn loopback_shapes_pass() {
        let cases = [
            ("ws://127.0.0.1:8080/ws", None, 8080),
            ("ws://localhost:9/ws", None, 9),
            ("ws://[::1]:7000/ws", None, 7000),
            ("redis://127.0.0.1", Some(6379), 6379),
            ("redis://:secret@127.0.0.2:6380/0", Some(6379), 6380),
            ("127.0.0.1:0", None, 0),
        ];
        for (text, default_port, port) in cases {
            let addr = loopback_addr("test", text, default_port).unwrap();
            assert!(addr.ip().is_loopback(), "{text}");
            assert_eq!(addr.port(), port, "{text}");
        }
    }

    /// Goal: anything off this machine is refused with a message that says why.
    #[test]
    fn outside_addresses_are_refused() {
        for text in [
            "ws://10.0.0.1:8080/ws",
            "ws://192.168.1.2:80/ws",
            "ws://example.com:80/ws",
            "redis://8.8.8.8:6379",
            "0.0.0.0:80",
            "ws://[2001:db8::1]:80/ws",
        ] {
            let error = loopback_addr("--servers", text, Some(80)).unwrap_err();
            assert!(
                matches!(error, LoopbackError::NotLoopback { .. }),
                "{text}: {error}"
            );
            assert!(error.to_string().contains("not a loopback"), "{text}");
        }
    }

    /// Goal: malformed addresses are named as such, not mistaken for outside ones.
    #[test]
    fn malformed_addresses_are_named() {
        for text in ["ws://", "127.0.0.1", "127.0.0.1:http", "ws://[::1:80/ws"] {
            let error = loopback_addr("test", text, None).unwrap_err();
            assert!(
                matches!(error, LoopbackError::Malformed { .. }),
                "{text}: {error}"
            );
        }
    }
}
