//! Optional `MONITOR` tap: splits the commands Redis ran into the ones clients sent (top
//! level, one network round trip each) and the ones scripts ran inside (`[0 lua]`), and names
//! each `EVALSHA` by its script. `INFO commandstats` mixes both, so this is what tells how
//! many round trips a matched player costs. MONITOR slows Redis down: use it in a
//! calibration run, not in a timed one.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Commands only the load generator sends during the measured window.
const OWN_COMMANDS: [&str; 2] = ["info", "hlen"];

/// Counted commands, by name; `EVALSHA` as `evalsha:<script>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MonitorCounts {
    /// Commands clients sent.
    pub top_level: BTreeMap<String, u64>,
    /// Commands scripts ran.
    pub inner: BTreeMap<String, u64>,
}

/// Where one MONITOR line belongs.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A command a client sent.
    TopLevel(String),
    /// A command a script ran.
    Inner(String),
    /// Anything else (the `+OK`, a malformed line, our own commands).
    Other,
}

/// Classifies one MONITOR line: `+<time> [<db> <client>|lua] "CMD" "arg" ...`.
fn classify(line: &str, script_names: &BTreeMap<String, &'static str>) -> Line {
    let Some((client, rest)) = line
        .split_once(" [")
        .and_then(|(_, rest)| rest.split_once("] "))
    else {
        return Line::Other;
    };
    let mut quoted = rest.split('"').skip(1).step_by(2);
    let Some(command) = quoted.next().map(str::to_ascii_lowercase) else {
        return Line::Other;
    };
    if client.ends_with(" lua") {
        return Line::Inner(command);
    }
    if OWN_COMMANDS.contains(&command.as_str()) {
        return Line::Other;
    }
    if command == "evalsha" {
        let name = quoted
            .next()
            .and_then(|sha| script_names.get(&sha.to_ascii_lowercase()).copied())
            .unwrap_or("unknown");
        return Line::TopLevel(format!("evalsha:{name}"));
    }
    Line::TopLevel(command)
}

/// SHA1 -> script name of every service script.
fn script_names() -> BTreeMap<String, &'static str> {
    match_server::scripts::all()
        .iter()
        .map(|script| (script.sha1.clone(), script.name))
        .collect()
}

/// A running tap.
pub struct Monitor {
    /// Stops the reader.
    stop: oneshot::Sender<()>,
    /// The reader, which returns the counts.
    task: JoinHandle<MonitorCounts>,
}

impl Monitor {
    /// Connects to Redis at `addr` (loopback, checked by the caller) and starts counting.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"MONITOR\r\n").await?;
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).await?;
        if !first.starts_with("+OK") {
            return Err(std::io::Error::other(format!(
                "MONITOR refused: {}",
                first.trim()
            )));
        }
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(count_lines(reader, stopped));
        Ok(Self { stop, task })
    }

    /// Stops counting and returns the counts.
    pub async fn finish(self) -> MonitorCounts {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Reads lines until told to stop or the connection ends.
async fn count_lines(
    mut reader: BufReader<TcpStream>,
    mut stopped: oneshot::Receiver<()>,
) -> MonitorCounts {
    let names = script_names();
    let mut counts = MonitorCounts::default();
    let mut line = String::new();
    loop {
        line.clear();
        tokio::select! {
            biased;
            _ = &mut stopped => return counts,
            read = reader.read_line(&mut line) => match read {
                Ok(0) | Err(_) => return counts,
                Ok(_) => {}
            },
        }
        match classify(&line, &names) {
            Line::TopLevel(command) => *counts.top_level.entry(command).or_insert(0) += 1,
            Line::Inner(command) => *counts.inner.entry(command).or_insert(0) += 1,
            Line::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: client commands, script commands and EVALSHA by script are told apart.
    #[test]
    fn lines_are_classified() {
        let names = script_names();
        let enqueue_sha = &match_server::scripts::enqueue::SCRIPT.sha1;
        let cases = [
            (
                format!(r#"+1700000000.1 [0 127.0.0.1:5000] "EVALSHA" "{enqueue_sha}" "2" "k""#),
                Line::TopLevel("evalsha:enqueue".to_owned()),
            ),
            (
                r#"+1700000000.1 [0 lua] "HGET" "{mm}:players" "x""#.to_owned(),
                Line::Inner("hget".to_owned()),
            ),
            (
                r#"+1700000000.1 [0 127.0.0.1:5000] "SET" "a" "b" "NX""#.to_owned(),
                Line::TopLevel("set".to_owned()),
            ),
            (
                r#"+1700000000.1 [0 127.0.0.1:5000] "EVALSHA" "ffff" "0""#.to_owned(),
                Line::TopLevel("evalsha:unknown".to_owned()),
            ),
            (
                r#"+1700000000.1 [0 127.0.0.1:5000] "INFO" "cpu""#.to_owned(),
                Line::Other,
            ),
            ("+OK".to_owned(), Line::Other),
        ];
        for (line, expected) in cases {
            assert_eq!(classify(&line, &names), expected, "{line}");
        }
    }
}
