//! The error codes JavaScript sees, in one table. Every rejection carries one of these: its name as
//! `error.code`, the EIP-1193 / JSON-RPC provider code the extension gives pages for it as `error.rpcCode`,
//! and a message.
//!
//! [`CODES`] is the one place where a core failure ([`FailReason`], through [`fail_code`]), a node-wasm code
//! and a provider code meet: the extension takes the number from the error instead of keeping a map of its
//! own, and `docs/dapp-api.md` prints [`markdown_table`] (the tests below keep the two in step, and check
//! that `docs/api.md` and `chordial-node.d.ts` list every code).

use chordial_core::node::{BootstrapError, FailReason, RefusalKind};

/// EIP-1193 provider error codes (and the JSON-RPC ones window.chordial uses), as pages receive them.
pub mod rpc {
    /// 4100: the origin is not approved, or the step is not allowed now.
    pub const UNAUTHORIZED: i32 = 4100;
    /// 4900: the extension or its node cannot be reached.
    pub const DISCONNECTED: i32 = 4900;
    /// -32602: malformed parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// -32000: the network could not carry the request; `data.reason` (the node-wasm code) says why.
    pub const REQUEST_FAILED: i32 = -32000;
    /// -32603: a bug or an unexpected failure inside the extension.
    pub const INTERNAL: i32 = -32603;
}

/// One node-wasm error code: a row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The code JavaScript sees as `error.code` (and pages as `error.data.reason`).
    pub name: &'static str,
    /// The provider code the extension rejects page requests with (`error.rpcCode` here).
    pub rpc: i32,
    /// The core's [`FailReason`] this code stands for, as the docs write it; `None` for the shell's own.
    pub core: Option<&'static str>,
    /// What it means, for the docs.
    pub meaning: &'static str,
}

const fn code(name: &'static str, rpc: i32, core: Option<&'static str>, meaning: &'static str) -> Code {
    Code { name, rpc, core, meaning }
}

/// A malformed argument (address, origin, options).
pub const INVALID_ARGUMENT: Code =
    code("INVALID_ARGUMENT", rpc::INVALID_PARAMS, None, "a malformed argument (address, origin, options)");
/// No `RTCPeerConnection` / `indexedDB` in this context.
pub const UNSUPPORTED: Code = code(
    "UNSUPPORTED",
    rpc::DISCONNECTED,
    None,
    "no `RTCPeerConnection` / `indexedDB` in the node's context",
);
/// IndexedDB failed.
pub const STORAGE: Code = code("STORAGE", rpc::INTERNAL, None, "IndexedDB failed");
/// `completeDelegation` without a `delegationRequest`.
pub const NO_PENDING_REQUEST: Code =
    code("NO_PENDING_REQUEST", rpc::UNAUTHORIZED, None, "a signature without a waiting delegation request");
/// The delegation does not verify.
pub const BAD_SIGNATURE: Code = code(
    "BAD_SIGNATURE",
    rpc::INVALID_PARAMS,
    None,
    "the wallet's signature (the delegation) does not verify",
);
/// `start` without a valid delegation.
pub const NO_DELEGATION: Code =
    code("NO_DELEGATION", rpc::UNAUTHORIZED, None, "no valid wallet delegation (none yet, or expired)");
/// `start` on a running node.
pub const ALREADY_RUNNING: Code = code("ALREADY_RUNNING", rpc::INTERNAL, None, "`start` on a running node");
/// A network call on a node that is not running.
pub const NOT_RUNNING: Code = code("NOT_RUNNING", rpc::DISCONNECTED, None, "the node is not running");
/// The node stopped while the request was pending.
pub const STOPPED: Code =
    code("STOPPED", rpc::DISCONNECTED, None, "the node stopped while the request was pending");
/// The node was closed or forgotten.
pub const CLOSED: Code = code("CLOSED", rpc::DISCONNECTED, None, "the node was closed or forgotten");
/// The payload or app origin is over its limit.
pub const TOO_LARGE: Code = code(
    "TOO_LARGE",
    rpc::INVALID_PARAMS,
    Some("TooLarge(_)"),
    "payload over 64 KiB or app origin over 256 bytes; nothing was sent",
);
/// No such wallet online: the wallet has no known session.
pub const NOT_FOUND: Code = code(
    "NOT_FOUND",
    rpc::REQUEST_FAILED,
    Some("NotFound"),
    "no such wallet online: no session of it is known (never came online, or expired); nothing was sent",
);
/// The addressed node (a session's node id) is not in the ring: a routing failure, not an unknown wallet.
pub const NODE_NOT_FOUND: Code = code(
    "NODE_NOT_FOUND",
    rpc::REQUEST_FAILED,
    Some("NodeNotFound"),
    "the addressed node is not in the ring (it left or never joined): a routing failure, not an unknown wallet",
);
/// The recipient's mailbox is full.
pub const MAILBOX_FULL: Code =
    code("MAILBOX_FULL", rpc::REQUEST_FAILED, Some("MailboxFull"), "the recipient's mailbox is full");
/// This wallet's share of the recipient's mailbox is used up; the mailbox still takes other senders' mail.
pub const MAILBOX_QUOTA: Code = code(
    "MAILBOX_QUOTA",
    rpc::REQUEST_FAILED,
    Some("MailboxQuota"),
    "this wallet has as much mail waiting for the recipient as one sender may (an eighth of the mailbox); try again once the recipient has read some",
);
/// No answer in time.
pub const TIMEOUT: Code =
    code("TIMEOUT", rpc::REQUEST_FAILED, Some("Timeout"), "no answer in time (retries included)");
/// No live link leads closer to the destination.
pub const NO_ROUTE: Code =
    code("NO_ROUTE", rpc::REQUEST_FAILED, Some("NoRoute"), "no live link leads closer to the destination");
/// The hop limit ran out.
pub const HOP_LIMIT: Code = code(
    "HOP_LIMIT",
    rpc::REQUEST_FAILED,
    Some("HopLimit"),
    "the hop limit ran out before the destination was reached",
);
/// The node has no links at all.
pub const NOT_CONNECTED: Code =
    code("NOT_CONNECTED", rpc::REQUEST_FAILED, Some("NotConnected"), "the node has no links at all");
/// The remote node refused (a bootstrap offer answered here, a pairing code).
pub const REFUSED: Code = code(
    "REFUSED",
    rpc::REQUEST_FAILED,
    None,
    "the other node refused (a bad, replayed or unauthorised offer or pairing code, or no room)",
);
/// The record was refused by its holder.
pub const RECORD_REFUSED: Code =
    code("RECORD_REFUSED", rpc::REQUEST_FAILED, Some("RecordRefused"), "the record's holder refused it");
/// A bootstrap server could not be used (events only).
pub const BOOTSTRAP_FAILED: Code = code(
    "BOOTSTRAP_FAILED",
    rpc::REQUEST_FAILED,
    Some("Bootstrap(_)"),
    "(events only) a bootstrap server could not be used: unreachable, no answer in time, refused, bad answer",
);
/// A peer connection could not be set up (events only; `pairOffer`/`pairComplete` when the link failed).
pub const WEBRTC: Code =
    code("WEBRTC", rpc::REQUEST_FAILED, None, "a peer connection could not be set up or did not open");
/// Too many requests or listeners at once, or no room for another link now.
pub const BUSY: Code = code(
    "BUSY",
    rpc::REQUEST_FAILED,
    None,
    "too many requests or listeners at once, or no room for another link now",
);
/// A pairing code that cannot be used: not a code, damaged, altered, the wrong kind, from another network,
/// or made by this node itself.
pub const BAD_CODE: Code = code("BAD_CODE", rpc::INVALID_PARAMS, None, "a pairing code that cannot be used");
/// A pairing offer older than the pairing time limit.
pub const CODE_EXPIRED: Code =
    code("CODE_EXPIRED", rpc::INVALID_PARAMS, None, "a pairing offer older than 5 minutes");
/// A pairing offer this node already answered.
pub const CODE_USED: Code =
    code("CODE_USED", rpc::INVALID_PARAMS, None, "a pairing offer this node already answered");
/// A pairing answer that no waiting offer of this node matches.
pub const NO_MATCHING_OFFER: Code = code(
    "NO_MATCHING_OFFER",
    rpc::INVALID_PARAMS,
    None,
    "a pairing answer no waiting offer of this node matches",
);

/// Every code, in the order the docs print them.
pub const CODES: &[Code] = &[
    INVALID_ARGUMENT,
    UNSUPPORTED,
    STORAGE,
    NO_PENDING_REQUEST,
    BAD_SIGNATURE,
    NO_DELEGATION,
    ALREADY_RUNNING,
    NOT_RUNNING,
    STOPPED,
    CLOSED,
    TOO_LARGE,
    NOT_FOUND,
    NODE_NOT_FOUND,
    MAILBOX_FULL,
    MAILBOX_QUOTA,
    TIMEOUT,
    NO_ROUTE,
    HOP_LIMIT,
    NOT_CONNECTED,
    REFUSED,
    RECORD_REFUSED,
    BOOTSTRAP_FAILED,
    WEBRTC,
    BUSY,
    BAD_CODE,
    CODE_EXPIRED,
    CODE_USED,
    NO_MATCHING_OFFER,
];

/// The code of a request the core failed: every [`FailReason`] has exactly one.
pub fn fail_code(reason: &FailReason) -> Code {
    match reason {
        FailReason::Timeout => TIMEOUT,
        FailReason::NoRoute => NO_ROUTE,
        FailReason::HopLimit => HOP_LIMIT,
        FailReason::NodeNotFound => NODE_NOT_FOUND,
        FailReason::NotConnected => NOT_CONNECTED,
        FailReason::Bootstrap(_) => BOOTSTRAP_FAILED,
        FailReason::NotFound => NOT_FOUND,
        FailReason::MailboxFull => MAILBOX_FULL,
        FailReason::MailboxQuota => MAILBOX_QUOTA,
        FailReason::RecordRefused => RECORD_REFUSED,
        FailReason::TooLarge(_) => TOO_LARGE,
    }
}

/// The table as `docs/dapp-api.md` prints it (between its `node-error-table` markers).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| core (`FailReason`) | node-wasm `code` (`data.reason`) | provider `code` | meaning |\n|---|---|---|---|\n",
    );
    for c in CODES {
        let core = c.core.map_or_else(|| "—".to_string(), |r| format!("`{r}`"));
        out.push_str(&format!("| {core} | `{}` | {} | {} |\n", c.name, c.rpc, c.meaning));
    }
    out
}

/// A typed error for the JavaScript API: a code from the table and a human `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// One of [`CODES`].
    pub code: Code,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// A malformed argument.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(INVALID_ARGUMENT, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name, self.message)
    }
}

/// The code and message for a request the core failed.
pub fn from_fail(reason: &FailReason) -> ApiError {
    ApiError::new(fail_code(reason), reason.to_string())
}

/// What the core hears of a bootstrap exchange that failed in JavaScript. `kind` is the `kind` of
/// `postSignal`'s rejection (`"timeout"`, `"refused"` with the HTTP `status`, `"answer"`, `"unreachable"`);
/// anything else counts as unreachable.
pub fn bootstrap_failure(kind: &str, status: u16, detail: String) -> BootstrapError {
    match kind {
        "timeout" => BootstrapError::Timeout,
        "refused" => BootstrapError::Refused { kind: RefusalKind::from_http_status(status), detail },
        "answer" => BootstrapError::BadAnswer { detail },
        _ => BootstrapError::Unreachable { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One failure of every kind. The match makes a new [`FailReason`] variant fail to compile here until
    /// it has a sample (and, through [`fail_code`], a row).
    fn every_reason() -> Vec<FailReason> {
        let all = vec![
            FailReason::Timeout,
            FailReason::NoRoute,
            FailReason::HopLimit,
            FailReason::NodeNotFound,
            FailReason::NotConnected,
            FailReason::Bootstrap(BootstrapError::Timeout),
            FailReason::NotFound,
            FailReason::MailboxFull,
            FailReason::MailboxQuota,
            FailReason::RecordRefused,
            FailReason::TooLarge(70_000),
        ];
        for r in &all {
            match r {
                FailReason::Timeout
                | FailReason::NoRoute
                | FailReason::HopLimit
                | FailReason::NodeNotFound
                | FailReason::NotConnected
                | FailReason::Bootstrap(_)
                | FailReason::NotFound
                | FailReason::MailboxFull
                | FailReason::MailboxQuota
                | FailReason::RecordRefused
                | FailReason::TooLarge(_) => {}
            }
        }
        all
    }

    /// `Bootstrap(Timeout)` → `Bootstrap`.
    fn variant(r: &FailReason) -> String {
        format!("{r:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_string()
    }

    #[test]
    fn every_failure_has_a_code_and_the_core_message() {
        let e = from_fail(&FailReason::TooLarge(70_000));
        assert_eq!(e.code, TOO_LARGE);
        assert_eq!(e.message, "too large (70000 bytes)");
        assert_eq!(e.to_string(), "TOO_LARGE: too large (70000 bytes)");
        let boot =
            from_fail(&FailReason::Bootstrap(BootstrapError::Unreachable { detail: "refused".into() }));
        assert_eq!(boot.code, BOOTSTRAP_FAILED);
        assert_eq!(boot.message, "bootstrap failed: server unreachable: refused");
    }

    #[test]
    fn no_such_wallet_and_a_missing_node_stay_apart() {
        let wallet = fail_code(&FailReason::NotFound);
        let node = fail_code(&FailReason::NodeNotFound);
        assert_eq!(wallet.name, "NOT_FOUND");
        assert_eq!(node.name, "NODE_NOT_FOUND");
        let routing =
            [FailReason::NoRoute, FailReason::Timeout, FailReason::HopLimit, FailReason::NodeNotFound];
        for r in &routing {
            assert_ne!(fail_code(r).name, wallet.name, "{r:?}");
        }
    }

    #[test]
    fn the_table_is_one_row_per_code_and_one_code_per_reason() {
        for (i, c) in CODES.iter().enumerate() {
            assert!(CODES[..i].iter().all(|d| d.name != c.name), "{} twice", c.name);
            assert!(c.name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{}", c.name);
            assert!([4100, 4900, -32602, -32000, -32603].contains(&c.rpc), "{}: {}", c.name, c.rpc);
        }
        // Every reason maps to a row that names it, and every row naming a reason is some reason's code.
        let reasons = every_reason();
        for r in &reasons {
            let c = fail_code(r);
            assert!(CODES.contains(&c), "{} is not in CODES", c.name);
            let core =
                c.core.unwrap_or_else(|| panic!("{} names no core reason, but {r:?} maps to it", c.name));
            assert_eq!(core.split('(').next(), Some(variant(r).as_str()), "{}", c.name);
        }
        for c in CODES.iter().filter(|c| c.core.is_some()) {
            assert!(
                reasons.iter().any(|r| fail_code(r) == *c),
                "{} names a reason no failure maps to",
                c.name
            );
        }
        // Every `pub const …: Code` of this file is in CODES.
        for line in include_str!("error.rs").lines() {
            let Some(rest) = line.strip_prefix("pub const ") else { continue };
            if let Some((name, ty)) = rest.split_once(':') {
                if ty.trim_start().starts_with("Code") {
                    assert!(CODES.iter().any(|c| c.name == name), "{name} is not in CODES");
                }
            }
        }
    }

    #[test]
    fn dapp_api_md_prints_the_table() {
        let doc = include_str!("../../docs/dapp-api.md");
        let begin = "<!-- node-error-table: begin";
        let end = "<!-- node-error-table: end -->";
        let start = doc.find(begin).expect("docs/dapp-api.md has no node-error-table marker");
        let body = &doc[start..];
        let body = &body[body.find('\n').map_or(body.len(), |i| i + 1)..];
        let printed = &body[..body.find(end).expect("no end marker")];
        assert!(
            printed.trim() == markdown_table().trim(),
            "docs/dapp-api.md's error table differs from node-wasm/src/error.rs; it should be:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn api_md_and_the_typescript_types_list_every_code() {
        let api = include_str!("../../docs/api.md");
        let errors = &api[api.find("## Errors").expect("docs/api.md has an Errors section")..];
        let errors = &errors[..errors[3..].find("\n## ").map_or(errors.len(), |i| i + 3)];
        let dts = include_str!("../chordial-node.d.ts");
        let union = &dts[dts.find("export type ErrorCode").expect("ErrorCode in the .d.ts")..];
        let union = &union[..union.find(';').unwrap_or(union.len())];
        for c in CODES {
            assert!(errors.contains(&format!("`{}`", c.name)), "docs/api.md does not list {}", c.name);
            assert!(union.contains(&format!("'{}'", c.name)), "chordial-node.d.ts does not list {}", c.name);
        }
        // And nothing else: every code those two list is in the table.
        for name in union.split('\'').skip(1).step_by(2) {
            assert!(CODES.iter().any(|c| c.name == name), "chordial-node.d.ts lists {name}, not in CODES");
        }
        for row in errors.lines().filter(|l| l.starts_with("| `")) {
            let first = row.split('|').nth(1).unwrap_or_default();
            for name in first.split('`').skip(1).step_by(2) {
                assert!(CODES.iter().any(|c| c.name == name), "docs/api.md lists {name}, not in CODES");
            }
        }
    }

    #[test]
    fn failed_signal_exchanges_keep_their_kind() {
        assert_eq!(bootstrap_failure("timeout", 0, "x".into()), BootstrapError::Timeout);
        let refused = bootstrap_failure("refused", 403, "HTTP 403 unauthorized".into());
        assert_eq!(
            refused,
            BootstrapError::Refused {
                kind: RefusalKind::Unauthorized,
                detail: "HTTP 403 unauthorized".into()
            }
        );
        assert!(matches!(
            bootstrap_failure("refused", 503, String::new()),
            BootstrapError::Refused { kind: RefusalKind::Busy, .. }
        ));
        assert!(matches!(bootstrap_failure("answer", 0, String::new()), BootstrapError::BadAnswer { .. }));
        assert_eq!(
            bootstrap_failure("unreachable", 0, "Failed to fetch".into()),
            BootstrapError::Unreachable { detail: "Failed to fetch".into() }
        );
        assert!(matches!(bootstrap_failure("?", 0, String::new()), BootstrapError::Unreachable { .. }));
    }
}
