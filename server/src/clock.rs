//! The shell's one clock. The core takes time as an argument; this is where the server reads it.

use chordial_core::Timestamp;

/// Now, as Unix milliseconds (delegations and records carry wall-clock times, so this is the system
/// clock, not a monotonic one).
pub fn now() -> Timestamp {
    #[allow(clippy::disallowed_methods)]
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(since.as_millis() as u64)
}

/// Now, on the monotonic clock: for durations measured inside this process (rate limits), which must
/// not jump when the system clock is set.
pub fn monotonic() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)]
    std::time::Instant::now()
}
