//! Every fixed bound the service enforces, named in one place. Configurable bounds live in
//! [`config::Limits`](crate::config::Limits); these are the ones that need no tuning.

/// Longest game mode name; mode names become part of Redis keys.
pub const MAX_MODE_NAME_BYTES: usize = 64;
/// Most players one match may hold.
pub const MAX_PLAYERS_PER_MATCH: u32 = 100;
/// Smallest `max_frame_bytes` a config may set: a valid `enqueue` frame must fit.
pub const MIN_FRAME_BYTES: usize = 256;
/// Notices buffered per session before the router drops further ones (the session then
/// recovers through a resync with Redis).
pub const SESSION_NOTICE_CAPACITY: usize = 64;
/// Most matches one instance forms per mode in one round before yielding the lock.
pub const MAX_MATCHES_PER_ROUND: usize = 64;
/// Queue members `try_match` may pop per needed player: bounds the work spent on ghosts.
pub const MAX_POPS_PER_PLAYER: u32 = 4;
/// Entries one `sweep_players` call inspects.
pub const SWEEP_PAGE_ENTRIES: u32 = 256;
/// `sweep_players` calls per sweep round, so one round stays short on a huge hash.
pub const SWEEP_PAGES_PER_ROUND: usize = 16;
/// Loading sessions one sweep round inspects per mode.
pub const MAX_LOADING_SWEEP_PER_ROUND: usize = 1_024;
/// Attempts for an idempotent Redis effect whose outcome was unknown (error or timeout).
pub const MAX_EFFECT_ATTEMPTS: u32 = 3;
/// Pause between those attempts.
pub const EFFECT_RETRY_DELAY_MS: u64 = 50;
/// Players one `renew_leases` call carries.
pub const LEASE_RENEW_BATCH: usize = 512;
/// Registry keys one sweep step of the fleet index visits (`SCAN ... COUNT`): bounds the
/// GETs and the sync batch of one step, whatever the fleet's size.
pub const REGISTRY_SWEEP_PAGE_KEYS: u32 = 256;
/// Claims one allocation tries before answering "no server": a claimed server whose
/// registration changed (gone, busy, moved) is given back and another one claimed.
pub const MAX_CLAIM_ATTEMPTS: u32 = 4;
/// Sessions one game server may declare it hosts at once (`capacity` in its registration).
pub const MAX_SERVER_CAPACITY: u32 = 1_024;
/// Longest `status` accepted in a registration (`idle`, `busy`, `draining`, ...).
pub const MAX_SERVER_STATUS_BYTES: usize = 32;
/// Largest response body accepted from a game server.
pub const MAX_ALLOCATION_BODY_BYTES: usize = 16 * 1_024;
/// Largest HTTP request head accepted on the listener.
pub const MAX_HTTP_HEADER_BYTES: usize = 16 * 1_024;
/// Time a client has to send its HTTP request head.
pub const HTTP_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Read buffer per WebSocket. tungstenite's default is 128 KiB per connection; frames here
/// are a few hundred bytes, so 4 KiB keeps 10,000 connections in 40 MiB instead of 1.3 GiB.
pub const WS_READ_BUFFER_BYTES: usize = 4 * 1_024;
/// Most unsent bytes queued for one slow client before its connection fails.
pub const WS_MAX_WRITE_BUFFER_BYTES: usize = 64 * 1_024;
/// Time a frame write to a client may take before the connection counts as dead.
pub const SEND_TIMEOUT_MS: u64 = 5_000;
/// Consecutive rate-limited frames after which a connection is closed (a sustained flood).
pub const MAX_RATE_LIMITED_IN_A_ROW: u32 = 20;
/// Frames a client may send at once before rate limiting starts, unless configured
/// (`limits.message_burst`).
pub const DEFAULT_MESSAGE_BURST: u32 = 20;
/// Longest server address accepted from a game server.
pub const MAX_SERVER_ADDRESS_BYTES: usize = 256;
