//! The error codes JavaScript sees. Every rejection carries one of these (as `error.code`) and a message.

use chordial_core::node::FailReason;

/// A typed error for the JavaScript API: a stable `code` and a human `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// One of the codes listed in `docs/api.md`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// A malformed argument.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(INVALID_ARGUMENT, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A malformed argument (address, origin, options).
pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
/// No `RTCPeerConnection` / `indexedDB` in this context.
pub const UNSUPPORTED: &str = "UNSUPPORTED";
/// IndexedDB failed.
pub const STORAGE: &str = "STORAGE";
/// `completeDelegation` without a `delegationRequest`.
pub const NO_PENDING_REQUEST: &str = "NO_PENDING_REQUEST";
/// The delegation does not verify.
pub const BAD_SIGNATURE: &str = "BAD_SIGNATURE";
/// `start` without a valid delegation.
pub const NO_DELEGATION: &str = "NO_DELEGATION";
/// `start` on a running node.
pub const ALREADY_RUNNING: &str = "ALREADY_RUNNING";
/// A network call on a node that is not running.
pub const NOT_RUNNING: &str = "NOT_RUNNING";
/// The node stopped while the request was pending.
pub const STOPPED: &str = "STOPPED";
/// The node was closed or forgotten.
pub const CLOSED: &str = "CLOSED";
/// Too many requests pending at once.
pub const BUSY: &str = "BUSY";
/// A bootstrap server could not be used (events only).
pub const BOOTSTRAP_FAILED: &str = "BOOTSTRAP_FAILED";
/// A peer connection could not be set up (events only; `pairComplete` when the link failed to open).
pub const WEBRTC: &str = "WEBRTC";
/// A pairing code that cannot be used: not a code, damaged, altered, the wrong kind, from another network,
/// or made by this node itself.
pub const BAD_CODE: &str = "BAD_CODE";
/// A pairing offer older than the pairing time limit.
pub const CODE_EXPIRED: &str = "CODE_EXPIRED";
/// A pairing offer this node already answered.
pub const CODE_USED: &str = "CODE_USED";
/// A pairing answer that no waiting offer of this node matches.
pub const NO_MATCHING_OFFER: &str = "NO_MATCHING_OFFER";

/// The code and message for a request the core failed.
pub fn from_fail(reason: &FailReason) -> ApiError {
    let code = match reason {
        FailReason::Timeout => "TIMEOUT",
        FailReason::NoRoute => "NO_ROUTE",
        FailReason::HopLimit => "HOP_LIMIT",
        FailReason::NodeNotFound => "NOT_FOUND",
        FailReason::NotConnected => "NOT_CONNECTED",
        FailReason::Bootstrap(_) => BOOTSTRAP_FAILED,
        FailReason::NotFound => "NOT_FOUND",
        FailReason::MailboxFull => "MAILBOX_FULL",
        FailReason::RecordRefused => "RECORD_REFUSED",
        FailReason::TooLarge(_) => "TOO_LARGE",
    };
    ApiError::new(code, reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chordial_core::node::BootstrapError;

    #[test]
    fn every_failure_has_a_code_and_the_core_message() {
        let e = from_fail(&FailReason::TooLarge(70_000));
        assert_eq!(e.code, "TOO_LARGE");
        assert_eq!(e.message, "too large (70000 bytes)");
        assert_eq!(from_fail(&FailReason::NotFound).code, "NOT_FOUND");
        let boot =
            from_fail(&FailReason::Bootstrap(BootstrapError::Unreachable { detail: "refused".into() }));
        assert_eq!(boot.code, BOOTSTRAP_FAILED);
        assert_eq!(boot.message, "bootstrap failed: server unreachable: refused");
        assert_eq!(e.to_string(), "TOO_LARGE: too large (70000 bytes)");
    }
}
