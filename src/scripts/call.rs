//! The one path every script call takes: the typed call fills its script's [`Layout`],
//! the [`ScriptRunner`] sends it, counts and logs failures, parses the reply, validates it
//! against the call, and repeats an unknown outcome as the script's [`Retry`] policy allows.

use std::sync::Arc;
use std::time::Duration;

use crate::check::Checks;
use crate::keys::Keys;
use crate::limits;
use crate::metrics::{Family, Metrics};
use crate::store::{Reply, Store, StoreError};

use super::{ReplyError, Script};

/// The names of a script's KEYS and ARGV, in order: declared once, in the script's module.
/// Its typed call fills the slots by these names ([`Invocation`]) and the script's first
/// lines bind the same names (`local queue_key = KEYS[1]`; a unit test compares them).
#[derive(Debug)]
pub struct Layout {
    /// Names of `KEYS[1..]`, in order.
    pub keys: &'static [&'static str],
    /// Names of `ARGV[1..]`, in order.
    pub args: &'static [&'static str],
    /// What repeats in `KEYS` after the named keys, if anything (e.g. every mode's queue).
    pub key_tail: Option<&'static str>,
    /// What repeats in `ARGV` after the named arguments, if anything.
    pub arg_tail: Option<&'static str>,
}

/// The KEYS and ARGV of one call, filled slot by slot in the order its [`Layout`] names.
#[derive(Debug)]
pub struct Invocation {
    /// The layout being filled.
    layout: &'static Layout,
    /// KEYS so far.
    keys: Vec<String>,
    /// ARGV so far.
    args: Vec<String>,
    /// The first slot filled out of order, if any: the call is then never sent.
    misfit: Option<String>,
}

impl Invocation {
    /// An empty invocation of `layout`.
    pub fn new(layout: &'static Layout) -> Self {
        Self {
            layout,
            keys: Vec::with_capacity(layout.keys.len()),
            args: Vec::with_capacity(layout.args.len()),
            misfit: None,
        }
    }

    /// Fills the next named key, which must be `name`.
    pub fn key(&mut self, name: &'static str, value: String) {
        if self.layout.keys.get(self.keys.len()) != Some(&name) {
            self.misfit(format!("key {name} at KEYS[{}]", self.keys.len() + 1));
        }
        self.keys.push(value);
    }

    /// Fills the next named argument, which must be `name`.
    pub fn arg(&mut self, name: &'static str, value: impl ToString) {
        if self.layout.args.get(self.args.len()) != Some(&name) {
            self.misfit(format!("argument {name} at ARGV[{}]", self.args.len() + 1));
        }
        self.args.push(value.to_string());
    }

    /// Appends one repeated key, after every named one.
    pub fn key_tail(&mut self, value: String) {
        if self.layout.key_tail.is_none() || self.keys.len() < self.layout.keys.len() {
            self.misfit(format!("a repeated key at KEYS[{}]", self.keys.len() + 1));
        }
        self.keys.push(value);
    }

    /// Appends one repeated argument, after every named one.
    pub fn arg_tail(&mut self, value: impl ToString) {
        if self.layout.arg_tail.is_none() || self.args.len() < self.layout.args.len() {
            self.misfit(format!(
                "a repeated argument at ARGV[{}]",
                self.args.len() + 1
            ));
        }
        self.args.push(value.to_string());
    }

    fn misfit(&mut self, what: String) {
        self.misfit.get_or_insert(what);
    }

    /// KEYS and ARGV, or what does not fit the layout: a slot out of order, or one missing.
    pub fn finish(self) -> Result<(Vec<String>, Vec<String>), String> {
        if let Some(misfit) = self.misfit {
            return Err(misfit);
        }
        if self.keys.len() < self.layout.keys.len() || self.args.len() < self.layout.args.len() {
            return Err(format!(
                "{} of {} keys and {} of {} arguments filled",
                self.keys.len(),
                self.layout.keys.len(),
                self.args.len(),
                self.layout.args.len()
            ));
        }
        Ok((self.keys, self.args))
    }
}

/// Whether a call whose outcome is unknown (an error or timeout that may come after the
/// effect, or a reply that does not parse) is sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Sent once: a repeat could do the work twice (`try_match` would form a second group),
    /// or the next periodic round does it anyway. The caller recovers on its own.
    Never,
    /// Sent up to [`limits::MAX_EFFECT_ATTEMPTS`] times, [`limits::EFFECT_RETRY_DELAY_MS`]
    /// apart, until a reply parses: the script answers a repeat by the same caller the way
    /// it answered the first call. An error reply from Redis is never repeated.
    Idempotent,
}

impl Retry {
    /// How many times a call is sent at most.
    fn attempts(self) -> u32 {
        match self {
            Self::Never => 1,
            Self::Idempotent => limits::MAX_EFFECT_ATTEMPTS,
        }
    }
}

/// One call of one script, built from named fields.
pub trait ScriptCall {
    /// The typed outcome the reply parses into.
    type Outcome;
    /// Whether an unknown outcome is sent again.
    const RETRY: Retry;
    /// The script.
    fn script(&self) -> &'static Script;
    /// KEYS and ARGV, filled in the order of the script's [`Layout`].
    fn invocation(&self, keys: &Keys) -> Invocation;
    /// The reply as a typed outcome: a total parse of its shape, checked against what the
    /// service knows (its modes, the mode's group size).
    fn parse(&self, reply: &Reply) -> Result<Self::Outcome, ReplyError>;
    /// A relation between this call and a parsed outcome that the script guarantees
    /// (`try_match` names the loading id it was given): `Err` names the broken relation,
    /// which is an assertion failure, and the reply is treated as garbled.
    fn relation(&self, _outcome: &Self::Outcome) -> Result<(), &'static str> {
        Ok(())
    }
}

/// Why a call gave no outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Redis failed or did not answer: the effect may or may not have happened.
    Unavailable,
    /// Redis answered with an error reply (never repeated).
    Server,
    /// The reply did not parse, or contradicted the call: the effect is unknown too.
    BadReply,
    /// The call did not fit its script's layout and was not sent (a bug).
    Layout,
    /// The caller's guard withdrew the call before an attempt (its lease may be gone): that
    /// attempt was not sent, though an earlier one may have taken effect.
    Withdrawn,
}

/// Sends script calls: the one place that retries, counts and logs them.
#[derive(Clone)]
pub struct ScriptRunner {
    /// Where scripts run.
    store: Arc<dyn Store>,
    /// Key names, for the invocations.
    keys: Keys,
    /// Failed calls and bad replies are counted here.
    metrics: Arc<Metrics>,
    /// Broken layouts and reply relations are reported here.
    checks: Checks,
}

impl ScriptRunner {
    /// A runner on `store`.
    pub fn new(store: Arc<dyn Store>, keys: Keys, metrics: Arc<Metrics>, checks: Checks) -> Self {
        Self {
            store,
            keys,
            metrics,
            checks,
        }
    }

    /// Runs `call` to an outcome, as its retry policy allows.
    pub async fn call<C: ScriptCall>(&self, call: &C) -> Result<C::Outcome, CallError> {
        self.call_reporting(call, || {}).await
    }

    /// [`Self::call`], running `before_each` right before every attempt is sent (to report
    /// a decision to the probe once per attempt that may take effect).
    pub async fn call_reporting<C: ScriptCall>(
        &self,
        call: &C,
        before_each: impl Fn(),
    ) -> Result<C::Outcome, CallError> {
        let guard = || {
            before_each();
            true
        };
        self.call_guarded(call, guard).await
    }

    /// [`Self::call`], asking `may_send` right before every attempt: `false` withdraws the
    /// call there ([`CallError::Withdrawn`]). A session acting for its player checks its
    /// lease fence per attempt this way, not only per step: retries of one effect can span
    /// seconds when Redis holds requests, longer than the lease may live.
    pub async fn call_guarded<C: ScriptCall>(
        &self,
        call: &C,
        may_send: impl Fn() -> bool,
    ) -> Result<C::Outcome, CallError> {
        let script = call.script();
        let (keys, args) = match call.invocation(&self.keys).finish() {
            Ok(filled) => filled,
            Err(misfit) => {
                let detail = format!("{}: {misfit}", script.name);
                crate::check!(self.checks, "script_layout", false, "{detail}");
                return Err(CallError::Layout);
            }
        };
        let attempts = C::RETRY.attempts();
        let mut failure = CallError::Unavailable;
        for attempt in 1..=attempts {
            if !may_send() {
                return Err(CallError::Withdrawn);
            }
            match self.eval(script, &keys, &args).await {
                Ok(reply) => match self.outcome(call, &reply) {
                    Ok(outcome) => return Ok(outcome),
                    Err(error) => failure = error,
                },
                Err(StoreError::Server(_)) => return Err(CallError::Server),
                Err(_) => failure = CallError::Unavailable,
            }
            if attempt < attempts {
                tokio::time::sleep(Duration::from_millis(limits::EFFECT_RETRY_DELAY_MS)).await;
            }
        }
        Err(failure)
    }

    /// The reply's outcome, or why it is refused (counted and logged).
    fn outcome<C: ScriptCall>(&self, call: &C, reply: &Reply) -> Result<C::Outcome, CallError> {
        let outcome = call.parse(reply).map_err(|error| {
            self.bad_reply(&error);
            CallError::BadReply
        })?;
        match call.relation(&outcome) {
            Ok(()) => Ok(outcome),
            Err(relation) => {
                let name = call.script().name;
                crate::check!(
                    self.checks,
                    "reply_relation",
                    false,
                    "{name}: {relation} (reply: {reply})"
                );
                Err(CallError::BadReply)
            }
        }
    }

    /// Runs a script once, counting and logging a failure with its context.
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        let result = self.store.eval(script, keys, args).await;
        if let Err(error) = &result {
            self.metrics.incr(Family::StoreErrors, script.name);
            tracing::warn!(%error, script = script.name, ?keys, "script failed");
        }
        result
    }

    /// Counts and logs a reply that did not parse.
    fn bad_reply(&self, error: &ReplyError) {
        self.metrics.incr(Family::BadScriptReplies, error.script);
        tracing::error!(script = error.script, reason = %error.reason, reply = %error.reply, "bad script reply");
    }
}
