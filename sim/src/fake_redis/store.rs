//! The [`Store`] seam on the fake: every method becomes a plain command (or a script run)
//! through the same code as [`FakeRedis::execute`], wrapped in fault injection. Replies
//! reach the service as `RedisStore` hands them over (nested errors lifted).

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use match_server::scripts::Script;
use match_server::store::{Reply, Store, StoreError, Subscription};
use tokio::sync::oneshot;

use super::faults::{Decision, FaultKind};
use super::observe::Served;
use super::{DataView, FakeRedis, State, server_error};

/// One request from the service.
enum Request<'a> {
    /// A command, name first.
    Command(Vec<Vec<u8>>),
    /// A script run (EVALSHA falling back to the source).
    Script {
        /// The script's name.
        name: &'static str,
        /// Its SHA1.
        sha1: Cow<'a, str>,
        /// Its source.
        source: Cow<'a, str>,
        /// KEYS.
        keys: Vec<Vec<u8>>,
        /// ARGV.
        args: Vec<Vec<u8>>,
    },
}

impl Request<'_> {
    /// The name scheduled faults aim at: the script's name, or the command's.
    fn target(&self) -> String {
        match self {
            Self::Command(args) => args
                .first()
                .map(|name| String::from_utf8_lossy(name).to_ascii_uppercase())
                .unwrap_or_default(),
            Self::Script { name, .. } => (*name).to_owned(),
        }
    }

    /// The request with everything it borrows copied, so a stall can hold it.
    fn into_owned(self) -> Request<'static> {
        match self {
            Self::Command(args) => Request::Command(args),
            Self::Script {
                name,
                sha1,
                source,
                keys,
                args,
            } => Request::Script {
                name,
                sha1: Cow::Owned(sha1.into_owned()),
                source: Cow::Owned(source.into_owned()),
                keys,
                args,
            },
        }
    }

    /// (KEYS, arguments) as an observer reads them: a command's arguments after its name.
    fn parts(&self) -> (&[Vec<u8>], &[Vec<u8>]) {
        match self {
            Self::Command(args) => (&[], args.get(1..).unwrap_or_default()),
            Self::Script { keys, args, .. } => (keys, args),
        }
    }
}

/// What a held request's sender gets back when the stall ends: the reply and its delay.
type Outcome = (Result<Reply, StoreError>, Option<Duration>);

/// A request a stall holds: it takes effect, in the order held, when the stall ends.
pub(super) struct Held {
    /// The request.
    request: Request<'static>,
    /// When it was sent (the fake's unix ms).
    since_ms: u64,
    /// Where its outcome goes (the sender may have given up by then).
    reply: oneshot::Sender<Outcome>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("target", &self.request.target())
            .field("since_ms", &self.since_ms)
            .finish_non_exhaustive()
    }
}

/// The text of an injected connection failure.
fn injected(kind: FaultKind) -> StoreError {
    StoreError::Unavailable(format!("injected fault: {}", kind.name()))
}

/// Text arguments as a command.
fn command(args: &[&str]) -> Request<'static> {
    Request::Command(args.iter().map(|arg| arg.as_bytes().to_vec()).collect())
}

impl FakeRedis {
    /// Runs a request with faults: decides them, applies the effect (or not), corrupts or
    /// delays the reply. The lock is released before any delay. While this handle's
    /// instance is stalled the request is held instead, and takes effect when the stall
    /// ends; its sender gives up after the response timeout, as a real client does.
    async fn request(&self, request: Request<'_>) -> Result<Reply, StoreError> {
        let (result, delay) = match self.hold(request) {
            Ok((receiver, timeout_ms)) => return Self::wait_held(receiver, timeout_ms).await,
            Err(request) => self.request_now(self.client_name(), &request, 0),
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        result
    }

    /// Holds `request` when this handle's instance is stalled (returning where its outcome
    /// will come and the response timeout); hands it back otherwise.
    #[allow(clippy::type_complexity)]
    fn hold<'a>(
        &self,
        request: Request<'a>,
    ) -> Result<(oneshot::Receiver<Outcome>, Option<u64>), Request<'a>> {
        let Some(client) = self.client.as_deref() else {
            return Err(request);
        };
        let now_ms = self.now_ms();
        let mut state = self.lock();
        let timeout_ms = state
            .response_timeout_ms
            .filter(|_| !state.frozen.contains(client));
        if state.armed_lease_stalls.contains(client)
            && lease_lapses_first(&DataView::new(&state.core.db, now_ms), &request)
        {
            state.armed_lease_stalls.remove(client);
            state.stalls.entry(client.to_owned()).or_default();
            state.struck_stalls.push(client.to_owned());
        }
        let Some(held) = state.stalls.get_mut(client) else {
            return Err(request);
        };
        let (sender, receiver) = oneshot::channel();
        held.push(Held {
            request: request.into_owned(),
            since_ms: now_ms,
            reply: sender,
        });
        Ok((receiver, timeout_ms))
    }

    /// Waits for a held request's outcome, at most `timeout_ms`.
    async fn wait_held(
        receiver: oneshot::Receiver<Outcome>,
        timeout_ms: Option<u64>,
    ) -> Result<Reply, StoreError> {
        let outcome = match timeout_ms {
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), receiver).await {
                Ok(outcome) => outcome,
                Err(_) => return Err(StoreError::Timeout(ms)),
            },
            None => receiver.await,
        };
        let Ok((result, delay)) = outcome else {
            return Err(StoreError::Unavailable(
                "the fake dropped a held request".into(),
            ));
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        result
    }

    /// Stalls the instance `client`: its requests are held from now on.
    pub fn stall(&self, client: &str) {
        self.lock().stalls.entry(client.to_owned()).or_default();
    }

    /// Arms a freeze of the instance `client`: right after it next takes a match lock (a
    /// `SET` of a `:lock:` key with `NX` that succeeds), its requests are held, and its
    /// client waits for them with no timeout, until [`release`](Self::release).
    pub fn freeze_after_lock(&self, client: &str) {
        self.lock().armed.insert(client.to_owned());
    }

    /// Arms a stall of the instance `client` right after it next takes a match lock: its
    /// requests are held from then on (its client gives up on each after the response
    /// timeout, as in any stall) until [`release`](Self::release).
    pub fn stall_after_lock(&self, client: &str) {
        self.lock().armed_stalls.insert(client.to_owned());
    }

    /// Arms a crash of the instance `client` right after its next script that owes a notice
    /// (a group formed, a loading session cancelled, a match recorded) took effect: its
    /// requests are held for good from then on, and [`take_struck_crashes`](Self::take_struck_crashes)
    /// names it, so the driver crashes it before it could publish.
    pub fn crash_after_notice_script(&self, client: &str) {
        self.lock().armed_crashes.insert(client.to_owned());
    }

    /// Arms a stall past a lease of the instance `client` (W9): from now on its player-lease
    /// renewals fail before their effect, and its next `loading_complete` is held, with
    /// every request after it (its client gives up on each after the response timeout),
    /// until [`release`](Self::release). The driver learns it struck from
    /// [`take_struck_stalls`](Self::take_struck_stalls) and resumes it once
    /// [`held_lease_lapsed`](Self::held_lease_lapsed).
    pub fn stall_past_lease(&self, client: &str) {
        self.lock().armed_lease_stalls.insert(client.to_owned());
    }

    /// The instances whose armed lease stall struck since the last call, in the order struck.
    pub fn take_struck_stalls(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().struck_stalls)
    }

    /// Disarms a lease stall that never struck (its renewals work again); returns whether
    /// one was armed.
    pub fn disarm_lease_stall(&self, client: &str) -> bool {
        self.lock().armed_lease_stalls.remove(client)
    }

    /// Whether the stalled instance `client` holds a `loading_complete` whose caller's
    /// player lease no longer holds the caller's token (it ran out while held).
    pub fn held_lease_lapsed(&self, client: &str) -> bool {
        let now_ms = self.now_ms();
        let state = self.lock();
        let Some(held) = state.stalls.get(client) else {
            return false;
        };
        let fenced_on = held.iter().find_map(|item| match &item.request {
            Request::Script {
                name: "loading_complete",
                keys,
                args,
                ..
            } => Some((keys.get(2)?, args.get(1)?)),
            _ => None,
        });
        let Some((lease_key, owner)) = fenced_on else {
            return false;
        };
        let Ok(lease_key) = std::str::from_utf8(lease_key) else {
            return false;
        };
        let view = DataView::new(&state.core.db, now_ms);
        view.string(lease_key) != Some(owner.as_slice())
    }

    /// The instances whose armed crash struck since the last call, in the order struck.
    pub fn take_struck_crashes(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().struck_crashes)
    }

    /// Disarms a crash that never struck; returns whether one was armed.
    pub fn disarm_crash(&self, client: &str) -> bool {
        self.lock().armed_crashes.remove(client)
    }

    /// Forgets what the crashed instance `client` had sent and not yet had applied: a dead
    /// process's held requests never take effect (their senders are gone).
    pub fn forget_crashed(&self, client: &str) -> usize {
        let mut state = self.lock();
        state.armed.remove(client);
        state.armed_stalls.remove(client);
        state.armed_crashes.remove(client);
        state.armed_lease_stalls.remove(client);
        state.frozen.remove(client);
        state.stalls.remove(client).map_or(0, |held| held.len())
    }

    /// Whether the instance `client` is stalled.
    pub fn is_stalled(&self, client: &str) -> bool {
        self.lock().stalls.contains_key(client)
    }

    /// Ends the stall of `client`: its held requests take effect now, in the order they
    /// were sent, and their senders get their replies (if they still wait). Returns how
    /// many were held.
    pub fn release(&self, client: &str) -> usize {
        let held = {
            let mut state = self.lock();
            state.armed.remove(client);
            state.armed_stalls.remove(client);
            state.armed_lease_stalls.remove(client);
            state.frozen.remove(client);
            state.stalls.remove(client).unwrap_or_default()
        };
        let count = held.len();
        for item in held {
            let held_ms = self.now_ms().saturating_sub(item.since_ms);
            let outcome = self.request_now(client, &item.request, held_ms);
            let _ = item.reply.send(outcome);
        }
        count
    }

    /// The synchronous part of [`request`](Self::request), for `client`'s request that a
    /// stall held `held_ms`.
    fn request_now(
        &self,
        client: &str,
        request: &Request<'_>,
        held_ms: u64,
    ) -> (Result<Reply, StoreError>, Option<Duration>) {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        state.commands_executed += 1;
        let target = request.target();
        let scheduled = state.faults.scheduled_for(&target);
        let mut element = scheduled.as_ref().and_then(|fault| fault.element);
        let mut decision = match scheduled.map(|fault| fault.kind) {
            Some(FaultKind::SubscriberDrop) => Decision {
                kind: None,
                drop_subscribers: true,
            },
            Some(kind) => Decision {
                kind: Some(kind),
                drop_subscribers: false,
            },
            None => state
                .faults
                .decide(matches!(request, Request::Script { .. })),
        };
        // An armed lease stall fails the instance's player-lease renewals.
        if state.armed_lease_stalls.contains(client) && target == "renew_player_leases" {
            decision.kind = Some(FaultKind::ErrorBeforeEffect);
        }
        let dropped = state.apply_subscriber_drop(decision);
        let mut served = Served {
            client,
            now_ms,
            target: &target,
            keys: request.parts().0,
            args: request.parts().1,
            result: None,
            effect: None,
            fault: None,
            delay_ms: 0,
            held_ms,
            dropped_subscribers: dropped,
        };
        if decision.kind == Some(FaultKind::ErrorBeforeEffect) {
            state.faults.record(FaultKind::ErrorBeforeEffect);
            served.fault = Some(FaultKind::ErrorBeforeEffect);
            state.observe(&served, now_ms);
            return (Err(injected(FaultKind::ErrorBeforeEffect)), None);
        }
        state.observe_before(&served, now_ms);
        let result = match request {
            Request::Command(args) => state.execute(args, now_ms),
            Request::Script {
                sha1,
                source,
                keys,
                args,
                ..
            } => state.run_script(sha1, source.as_bytes(), keys, args, now_ms),
        }
        .map_err(server_error)
        .and_then(lift_nested_error);
        if let Ok(reply) = &result
            && let Some(fault) = state.faults.scheduled_for_reply(&target, reply)
        {
            decision.kind = Some(fault.kind);
            element = fault.element;
        }
        // What the request did, kept only when the fault about to strike hides it.
        let effect = result
            .as_ref()
            .ok()
            .filter(|_| decision.kind == Some(FaultKind::ErrorAfterEffect))
            .cloned();
        let (result, delay, struck) = state.strike(decision.kind, element, result);
        served.result = Some(&result);
        served.effect = effect.as_ref();
        served.fault = struck;
        served.delay_ms = delay.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        state.observe(&served, now_ms);
        state.strike_armed(client, request, &result);
        (result, delay)
    }

    /// Runs a request and expects a bulk string or nil.
    async fn optional_bulk(&self, request: Request<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        match self.request(request).await? {
            Reply::Bulk(bytes) => Ok(Some(bytes)),
            Reply::Nil => Ok(None),
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        }
    }

    /// Runs a request and expects a non-negative integer.
    async fn count(&self, request: Request<'_>) -> Result<u64, StoreError> {
        match self.request(request).await? {
            Reply::Int(number) => {
                u64::try_from(number).map_err(|_| StoreError::UnexpectedReply(number.to_string()))
            }
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        }
    }
}

impl State {
    /// Strikes what is armed for `client` and fires on this request: a freeze or a stall
    /// after it took a match lock, a crash after a script that owes a notice.
    fn strike_armed(
        &mut self,
        client: &str,
        request: &Request<'_>,
        result: &Result<Reply, StoreError>,
    ) {
        if (self.armed.contains(client) || self.armed_stalls.contains(client))
            && takes_lock(request, result)
        {
            if self.armed.remove(client) {
                self.frozen.insert(client.to_owned());
            }
            self.armed_stalls.remove(client);
            self.stalls.entry(client.to_owned()).or_default();
        }
        if self.armed_crashes.contains(client) && owes_notice(request, result) {
            self.armed_crashes.remove(client);
            self.frozen.insert(client.to_owned());
            self.stalls.entry(client.to_owned()).or_default();
            self.struck_crashes.push(client.to_owned());
        }
    }

    /// Applies the fault decided for a request whose effect already happened; returns the
    /// reply, its delay and the fault that struck (a reply fault only when it applied).
    fn strike(
        &mut self,
        kind: Option<FaultKind>,
        element: Option<usize>,
        mut result: Result<Reply, StoreError>,
    ) -> (
        Result<Reply, StoreError>,
        Option<Duration>,
        Option<FaultKind>,
    ) {
        match kind {
            Some(FaultKind::ErrorAfterEffect) => {
                self.faults.record(FaultKind::ErrorAfterEffect);
                let error = Err(injected(FaultKind::ErrorAfterEffect));
                (error, None, kind)
            }
            Some(FaultKind::SlowReply) => {
                self.faults.record(FaultKind::SlowReply);
                (result, Some(self.faults.slow_delay()), kind)
            }
            Some(kind) if kind.is_reply_fault() => {
                let struck = if let Ok(reply) = &mut result
                    && self.faults.corrupt(kind, reply, element)
                {
                    self.faults.record(kind);
                    Some(kind)
                } else {
                    None
                };
                (result, None, struck)
            }
            _ => (result, None, None),
        }
    }

    /// Drops live subscriptions when the decision says so, counting it only if any ended;
    /// returns whether any did.
    fn apply_subscriber_drop(&mut self, decision: Decision) -> bool {
        let dropped = decision.drop_subscribers && self.core.pubsub.drop_all() > 0;
        if dropped {
            self.faults.record(FaultKind::SubscriberDrop);
        }
        dropped
    }

    /// Tells the observer, if any, about a request about to take effect.
    fn observe_before(&self, served: &Served<'_>, now_ms: u64) {
        if let Some(observer) = &self.observer {
            let data = DataView::new(&self.core.db, now_ms);
            observer.before(served.target, served.keys, served.args, &data);
        }
    }

    /// Tells the observer, if any, about a served request.
    fn observe(&self, served: &Served<'_>, now_ms: u64) {
        if let Some(observer) = &self.observer {
            observer.served(served, &DataView::new(&self.core.db, now_ms));
        }
    }
}

/// Whether `request` took a match lock: a `SET` of a `:lock:` key with `NX` whose reply
/// says it was set.
fn takes_lock(request: &Request<'_>, result: &Result<Reply, StoreError>) -> bool {
    let Request::Command(args) = request else {
        return false;
    };
    let is = |index: usize, word: &[u8]| {
        args.get(index)
            .is_some_and(|arg| arg.eq_ignore_ascii_case(word))
    };
    let lock_key = args
        .get(1)
        .is_some_and(|key| key.windows(6).any(|part| part == b":lock:"));
    let nx = args
        .iter()
        .skip(3)
        .any(|arg| arg.eq_ignore_ascii_case(b"NX"));
    is(0, b"SET") && lock_key && nx && matches!(result, Ok(Reply::Status(_)))
}

/// Whether `request` is a `loading_complete` whose caller's player lease still holds the
/// caller's token but runs out before the loading session's deadline: held until the lease
/// ran out, it lands while the loading session still lives (W9).
fn lease_lapses_first(data: &DataView<'_>, request: &Request<'_>) -> bool {
    let Request::Script {
        name: "loading_complete",
        keys,
        args,
        ..
    } = request
    else {
        return false;
    };
    let text = |index: usize| keys.get(index).and_then(|b| std::str::from_utf8(b).ok());
    let (Some(loading_key), Some(lease_key), Some(owner)) = (text(0), text(2), args.get(1)) else {
        return false;
    };
    let Some(lease) = data.entry(lease_key) else {
        return false;
    };
    let deadline_ms = data
        .hash(loading_key)
        .and_then(|fields| fields.get(b"deadline_ms".as_slice()))
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse::<u64>().ok());
    matches!(&lease.value, super::Value::String(holder) if holder == owner)
        && lease
            .expires_at_ms
            .zip(deadline_ms)
            .is_some_and(|(expires_ms, deadline_ms)| expires_ms < deadline_ms)
}

/// Whether `request` is a script whose reply obliges its caller to publish a notice: a
/// group formed (`try_match`), a loading session cancelled, a match recorded.
fn owes_notice(request: &Request<'_>, result: &Result<Reply, StoreError>) -> bool {
    let Request::Script { name, .. } = request else {
        return false;
    };
    let Ok(Reply::Array(items)) = result else {
        return false;
    };
    let tag = items.first().and_then(Reply::as_text).unwrap_or_default();
    matches!(
        (*name, tag),
        ("try_match" | "finish_match", "matched") | ("cancel_loading", "cancelled")
    )
}

/// Makes an error element anywhere in a reply the error of the whole request, as the
/// `redis` crate under `RedisStore` does (`Value::extract_error`), so the service meets
/// one behaviour in production and in the simulation.
fn lift_nested_error(reply: Reply) -> Result<Reply, StoreError> {
    match first_error(&reply) {
        Some(text) => Err(StoreError::Server(text.to_owned())),
        None => Ok(reply),
    }
}

/// The first error element of a reply, depth first.
fn first_error(reply: &Reply) -> Option<&str> {
    match reply {
        Reply::Error(text) => Some(text),
        Reply::Array(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

/// The text of every element of an array of bulk strings.
fn texts(reply: &Reply) -> Result<Vec<String>, StoreError> {
    let Reply::Array(items) = reply else {
        return Err(StoreError::UnexpectedReply(reply.to_string()));
    };
    items
        .iter()
        .map(|item| match item {
            Reply::Bulk(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        })
        .collect()
}

#[async_trait]
impl Store for FakeRedis {
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        let keys = keys.iter().map(|key| key.as_bytes().to_vec()).collect();
        let args = args.iter().map(|arg| arg.as_bytes().to_vec()).collect();
        self.request(Request::Script {
            name: script.name,
            sha1: Cow::Borrowed(&script.sha1),
            source: Cow::Borrowed(&script.source),
            keys,
            args,
        })
        .await
    }

    async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let ttl = ttl_ms.to_string();
        match self
            .request(command(&["SET", key, value, "NX", "PX", &ttl]))
            .await?
        {
            Reply::Status(_) => Ok(true),
            Reply::Nil => Ok(false),
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.optional_bulk(command(&["GET", key])).await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.optional_bulk(command(&["HGET", key, field])).await
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        texts(&self.request(command(&["SMEMBERS", key])).await?)
    }

    async fn scard(&self, key: &str) -> Result<u64, StoreError> {
        self.count(command(&["SCARD", key])).await
    }

    async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: u32,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let (cursor, count) = (cursor.to_string(), count.to_string());
        let request = command(&["SCAN", &cursor, "MATCH", pattern, "COUNT", &count]);
        let reply = self.request(request).await?;
        let unexpected = || StoreError::UnexpectedReply(reply.to_string());
        let Reply::Array(parts) = &reply else {
            return Err(unexpected());
        };
        let [Reply::Bulk(next), page] = parts.as_slice() else {
            return Err(unexpected());
        };
        let next = std::str::from_utf8(next)
            .ok()
            .and_then(|text| text.parse().ok());
        Ok((next.ok_or_else(unexpected)?, texts(page)?))
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, StoreError> {
        let args = vec![
            b"PUBLISH".to_vec(),
            channel.as_bytes().to_vec(),
            payload.to_vec(),
        ];
        self.count(Request::Command(args)).await
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Box<dyn Subscription>, StoreError> {
        let (result, delay) = {
            let mut state = self.lock();
            state.commands_executed += 1;
            let decision = state.faults.decide(false);
            let dropped = state.apply_subscriber_drop(decision);
            let (result, delay) = match decision.kind {
                Some(FaultKind::ErrorBeforeEffect) => {
                    state.faults.record(FaultKind::ErrorBeforeEffect);
                    (Err(injected(FaultKind::ErrorBeforeEffect)), None)
                }
                Some(FaultKind::ErrorAfterEffect) => {
                    // Subscribed, but the confirmation is lost: the client end is dropped.
                    drop(state.core.pubsub.psubscribe(pattern.as_bytes()));
                    state.faults.record(FaultKind::ErrorAfterEffect);
                    (Err(injected(FaultKind::ErrorAfterEffect)), None)
                }
                Some(FaultKind::SlowReply) => {
                    state.faults.record(FaultKind::SlowReply);
                    let delay = state.faults.slow_delay();
                    (
                        Ok(state.core.pubsub.psubscribe(pattern.as_bytes())),
                        Some(delay),
                    )
                }
                _ => (Ok(state.core.pubsub.psubscribe(pattern.as_bytes())), None),
            };
            let args = [pattern.as_bytes().to_vec()];
            let struck = decision.kind.filter(|kind| {
                matches!(
                    kind,
                    FaultKind::ErrorBeforeEffect
                        | FaultKind::ErrorAfterEffect
                        | FaultKind::SlowReply
                )
            });
            let served = Served {
                client: self.client_name(),
                now_ms: self.now_ms(),
                target: "PSUBSCRIBE",
                keys: &[],
                args: &args,
                result: None,
                effect: None,
                fault: struck,
                delay_ms: delay.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                held_ms: 0,
                dropped_subscribers: dropped,
            };
            state.observe(&served, served.now_ms);
            (result, delay)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        result.map(|subscription| Box::new(subscription) as Box<dyn Subscription>)
    }
}
