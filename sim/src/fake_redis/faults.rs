//! Fault injection: the plan (a probability per kind and a slow-reply delay range), the
//! seeded decisions made for each command, the reply corruptions, and the counters of
//! faults actually injected.

use std::collections::BTreeMap;
use std::time::Duration;

use match_server::store::Reply;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Every kind of fault the fake can inject.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Fail with `StoreError::Unavailable` before the command has any effect.
    ErrorBeforeEffect,
    /// Apply the command, then fail with `StoreError::Unavailable`: the reply is lost.
    ErrorAfterEffect,
    /// Cut a script's array reply at a random point (possibly to empty).
    TruncatedReply,
    /// Replace one element of a script's array reply with junk.
    GarbledElement,
    /// Append one element to a script's array reply.
    ExtraElement,
    /// Apply the command, then wait before replying.
    SlowReply,
    /// End every live pub/sub subscription, as a dropped connection does.
    SubscriberDrop,
}

impl FaultKind {
    /// Every kind, in the fixed order decisions are drawn in.
    pub const ALL: [Self; 7] = [
        Self::ErrorBeforeEffect,
        Self::ErrorAfterEffect,
        Self::TruncatedReply,
        Self::GarbledElement,
        Self::ExtraElement,
        Self::SlowReply,
        Self::SubscriberDrop,
    ];

    /// The stable snake_case name used in reports and counters.
    pub fn name(self) -> &'static str {
        match self {
            Self::ErrorBeforeEffect => "error_before_effect",
            Self::ErrorAfterEffect => "error_after_effect",
            Self::TruncatedReply => "truncated_reply",
            Self::GarbledElement => "garbled_element",
            Self::ExtraElement => "extra_element",
            Self::SlowReply => "slow_reply",
            Self::SubscriberDrop => "subscriber_drop",
        }
    }

    /// Whether the kind corrupts a reply (and so applies to script replies only).
    pub fn is_reply_fault(self) -> bool {
        matches!(
            self,
            Self::TruncatedReply | Self::GarbledElement | Self::ExtraElement
        )
    }
}

/// What to inject and how often. Probabilities are per command, between 0 and 1; the
/// kinds other than `subscriber_drop` exclude each other (at most one per command), so
/// their sum should stay at or below 1.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// Chance that a command fails before it has any effect.
    pub error_before_effect: f64,
    /// Chance that a command takes effect but its reply is lost.
    pub error_after_effect: f64,
    /// Chance that a script's array reply is cut short.
    pub truncated_reply: f64,
    /// Chance that one element of a script's array reply is garbled.
    pub garbled_element: f64,
    /// Chance that a script's array reply gets an extra element.
    pub extra_element: f64,
    /// Chance that a reply is delayed.
    pub slow_reply: f64,
    /// Chance, per command, that every live subscription is dropped.
    pub subscriber_drop: f64,
    /// Shortest delay of a slow reply.
    pub slow_reply_min_ms: u64,
    /// Longest delay of a slow reply.
    pub slow_reply_max_ms: u64,
}

impl Default for FaultPlan {
    /// No faults at all.
    fn default() -> Self {
        Self::uniform(0.0)
    }
}

impl FaultPlan {
    /// The same probability for every kind, and slow replies of 1 to 500 ms.
    pub fn uniform(probability: f64) -> Self {
        Self {
            error_before_effect: probability,
            error_after_effect: probability,
            truncated_reply: probability,
            garbled_element: probability,
            extra_element: probability,
            slow_reply: probability,
            subscriber_drop: probability,
            slow_reply_min_ms: 1,
            slow_reply_max_ms: 500,
        }
    }

    /// This plan with one kind's probability changed.
    pub fn with(mut self, kind: FaultKind, probability: f64) -> Self {
        *self.probability_mut(kind) = probability;
        self
    }

    /// The probability of one kind.
    pub fn probability(&self, kind: FaultKind) -> f64 {
        match kind {
            FaultKind::ErrorBeforeEffect => self.error_before_effect,
            FaultKind::ErrorAfterEffect => self.error_after_effect,
            FaultKind::TruncatedReply => self.truncated_reply,
            FaultKind::GarbledElement => self.garbled_element,
            FaultKind::ExtraElement => self.extra_element,
            FaultKind::SlowReply => self.slow_reply,
            FaultKind::SubscriberDrop => self.subscriber_drop,
        }
    }

    /// The probability of one kind, for changing it.
    fn probability_mut(&mut self, kind: FaultKind) -> &mut f64 {
        match kind {
            FaultKind::ErrorBeforeEffect => &mut self.error_before_effect,
            FaultKind::ErrorAfterEffect => &mut self.error_after_effect,
            FaultKind::TruncatedReply => &mut self.truncated_reply,
            FaultKind::GarbledElement => &mut self.garbled_element,
            FaultKind::ExtraElement => &mut self.extra_element,
            FaultKind::SlowReply => &mut self.slow_reply,
            FaultKind::SubscriberDrop => &mut self.subscriber_drop,
        }
    }
}

/// The faults decided for one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The one command fault, if any (never `SubscriberDrop`).
    pub kind: Option<FaultKind>,
    /// Whether live subscriptions drop before the command runs.
    pub drop_subscribers: bool,
}

/// One fault aimed at one request: the `occurrence`-th (from 1) call of `target`, a script
/// name (`try_match`) or a command name (`SET`, `PUBLISH`), counting only calls whose reply
/// starts with `reply_tag` when one is given. Named scenarios use these to hit exactly the
/// moment they are about.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduledFault {
    /// Script or command name.
    pub target: String,
    /// Which call of it, counting from 1.
    pub occurrence: u32,
    /// Count only calls whose reply is an array starting with this text (e.g. `matched`);
    /// such a fault strikes after the effect, so `error_before_effect` cannot use it.
    #[serde(default)]
    pub reply_tag: Option<String>,
    /// For `truncated_reply`: how many elements to keep; for `garbled_element`: which
    /// element to garble. Random when absent.
    #[serde(default)]
    pub element: Option<usize>,
    /// What to inject.
    pub kind: FaultKind,
}

impl ScheduledFault {
    /// A fault on the `occurrence`-th call of `target`.
    pub fn on_call(target: &str, occurrence: u32, kind: FaultKind) -> Self {
        Self {
            target: target.to_owned(),
            occurrence,
            reply_tag: None,
            element: None,
            kind,
        }
    }

    /// A fault on the `occurrence`-th call of `target` that replies `reply_tag`.
    pub fn on_reply(target: &str, reply_tag: &str, occurrence: u32, kind: FaultKind) -> Self {
        Self {
            reply_tag: Some(reply_tag.to_owned()),
            ..Self::on_call(target, occurrence, kind)
        }
    }

    /// The same fault aimed at one element of the reply.
    pub fn at_element(self, element: usize) -> Self {
        Self {
            element: Some(element),
            ..self
        }
    }
}

/// The fault plan in force, its own RNG stream, and what was injected.
#[derive(Debug)]
pub struct FaultState {
    /// Faults aimed at particular requests.
    scheduled: Vec<ScheduledFault>,
    /// Calls seen so far per target, for the scheduled faults.
    calls: BTreeMap<String, u32>,
    /// What to inject.
    plan: FaultPlan,
    /// Off during the simulation's quiet period.
    enabled: bool,
    /// Draws every decision; a stream separate from the data RNG.
    rng: ChaCha8Rng,
    /// Faults actually injected, by kind.
    injected: BTreeMap<FaultKind, u64>,
}

impl FaultState {
    /// No faults planned yet, enabled, drawing from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Self {
        Self {
            scheduled: Vec::new(),
            calls: BTreeMap::new(),
            plan: FaultPlan::default(),
            enabled: true,
            rng,
            injected: BTreeMap::new(),
        }
    }

    /// Replaces the plan.
    pub fn set_plan(&mut self, plan: FaultPlan) {
        self.plan = plan;
    }

    /// Adds a fault aimed at one request.
    pub fn schedule(&mut self, fault: ScheduledFault) {
        self.scheduled.push(fault);
    }

    /// Counts a call of `target` and returns the fault scheduled for it before its effect,
    /// if any (also while random injection is disabled: an aimed fault is part of the
    /// scenario itself).
    pub fn scheduled_for(&mut self, target: &str) -> Option<ScheduledFault> {
        self.count_and_find(target.to_owned(), None)
    }

    /// Counts a reply of `target` tagged `tag` and returns the fault scheduled for it.
    pub fn scheduled_for_reply(&mut self, target: &str, reply: &Reply) -> Option<ScheduledFault> {
        let Reply::Array(items) = reply else {
            return None;
        };
        let tag = items.first().and_then(Reply::as_text)?;
        self.count_and_find(format!("{target}\u{0}{tag}"), Some(tag))
    }

    fn count_and_find(&mut self, counter: String, tag: Option<&str>) -> Option<ScheduledFault> {
        if self.scheduled.is_empty() {
            return None;
        }
        let target = counter.split('\u{0}').next().unwrap_or_default().to_owned();
        let count = self.calls.entry(counter).or_insert(0);
        *count += 1;
        let occurrence = *count;
        self.scheduled
            .iter()
            .find(|f| {
                f.target == target && f.occurrence == occurrence && f.reply_tag.as_deref() == tag
            })
            .cloned()
    }

    /// Turns injection on or off (decisions are not even drawn while off).
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Whether injection is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Draws the faults for one command; reply faults only when `is_script`. Always two
    /// draws while enabled, so one seed gives one sequence whatever the plan.
    pub fn decide(&mut self, is_script: bool) -> Decision {
        if !self.enabled {
            return Decision::default();
        }
        let roll: f64 = self.rng.random();
        let drop_roll: f64 = self.rng.random();
        let mut threshold = 0.0;
        let mut chosen = None;
        for kind in FaultKind::ALL {
            if kind == FaultKind::SubscriberDrop || (kind.is_reply_fault() && !is_script) {
                continue;
            }
            threshold += self.plan.probability(kind);
            if roll < threshold {
                chosen = Some(kind);
                break;
            }
        }
        Decision {
            kind: chosen,
            drop_subscribers: drop_roll < self.plan.subscriber_drop,
        }
    }

    /// Counts one injected fault.
    pub fn record(&mut self, kind: FaultKind) {
        *self.injected.entry(kind).or_insert(0) += 1;
    }

    /// Faults injected so far by name, every kind present (zero when never injected).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        FaultKind::ALL
            .iter()
            .map(|kind| (kind.name(), self.injected.get(kind).copied().unwrap_or(0)))
            .collect()
    }

    /// A slow reply's delay, drawn from the plan's range.
    pub fn slow_delay(&mut self) -> Duration {
        let low = self.plan.slow_reply_min_ms.min(self.plan.slow_reply_max_ms);
        let high = self.plan.slow_reply_max_ms.max(low);
        Duration::from_millis(self.rng.random_range(low..=high))
    }

    /// Applies a reply fault to `reply`; false (and nothing changed) when the reply has no
    /// array to corrupt.
    pub fn corrupt(&mut self, kind: FaultKind, reply: &mut Reply, element: Option<usize>) -> bool {
        let Reply::Array(items) = reply else {
            return false;
        };
        match kind {
            FaultKind::TruncatedReply if !items.is_empty() => {
                let keep = element.unwrap_or_else(|| self.rng.random_range(0..items.len()));
                items.truncate(keep);
                true
            }
            FaultKind::GarbledElement if !items.is_empty() => {
                let at = element.unwrap_or_else(|| self.rng.random_range(0..items.len()));
                let junk = self.junk(false);
                items.get_mut(at).map(|item| *item = junk).is_some()
            }
            FaultKind::ExtraElement => {
                let junk = self.junk(true);
                items.push(junk);
                true
            }
            _ => false,
        }
    }

    /// A junk element: a non-UUID string, an empty string, an integer or nil; for an
    /// extra element also a well-formed UUID, the most dangerous kind of extra.
    fn junk(&mut self, may_be_uuid: bool) -> Reply {
        let choices = if may_be_uuid { 5 } else { 4 };
        match self.rng.random_range(0..choices) {
            0 => Reply::Bulk(format!("garbled-{:08x}", self.rng.random::<u32>()).into_bytes()),
            1 => Reply::Bulk(Vec::new()),
            2 => Reply::Int(self.rng.random_range(-5..1000)),
            3 => Reply::Nil,
            _ => {
                let uuid = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
                Reply::Bulk(uuid.to_string().into_bytes())
            }
        }
    }
}
