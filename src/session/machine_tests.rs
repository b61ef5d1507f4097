//! Unit tests of the session state machine: every (state, event) pair.
