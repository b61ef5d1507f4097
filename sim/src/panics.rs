//! Panics fail the seed: a process-wide hook records every panic (in any task of any host)
//! for the thread that runs the seed, since tokio swallows panics of spawned tasks. A
//! broken assertion of the service (a `check!` that failed, reported as a fact through the
//! probe seam) is recorded the same way: the service went on, but the seed fails.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::seams::sim_elapsed_ms;

thread_local! {
    /// Panics seen on this thread since the last `take`: (sim time, message with location).
    static SEEN: RefCell<Vec<(u64, String)>> = const { RefCell::new(Vec::new()) };
}

/// Installs the hook once; later calls do nothing.
pub fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-text panic payload".to_owned());
            let message = format!("panic: {payload}{location}");
            SEEN.with(|seen| seen.borrow_mut().push((sim_elapsed_ms(), message)));
        }));
    });
}

/// Runs `f`, turning a panic that unwinds out of it into `Err(message)`.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_owned())
    })
}

/// Records a broken assertion of the service (`Fact::AssertionFailed`: a `check!` that
/// failed and did not panic) as if it were a panic: it fails the seed under invariant 1.
pub fn assertion_failed(check: &str, detail: &str) {
    let message = format!("assertion {check} failed: {detail}");
    SEEN.with(|seen| seen.borrow_mut().push((sim_elapsed_ms(), message)));
}

/// Whether this thread saw a panic since the last `take`.
pub fn any() -> bool {
    SEEN.with(|seen| !seen.borrow().is_empty())
}

/// The panics this thread saw, clearing the record.
pub fn take() -> Vec<(u64, String)> {
    SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()))
}
