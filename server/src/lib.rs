//! chordial-server: the native Chordial node. It runs the same sans-IO [`chordial_core::node::Node`] as
//! the browser extension, and only translates:
//!
//! ```text
//!            ┌──────────────────────────── chordial-server ─────────────────────────────┐
//!  browser ──┤ POST /v1/signal ─┐                                                       │
//!  or server │                  ▼                                                       │
//!            │  http (axum) ─ Input ─▶ runtime: node task ── Output ──▶ rtc: link tasks ├── WebRTC data
//!  operator ─┤ admin listener:  ▲      (owns Node, the clock,  │          (webrtc-rs)   │   channels
//!            │ /v1/status,      │       every deadline)        ├──▶ signal_client ──────┼── POST /v1/signal
//!            │ /metrics         └──── frames, link events ─────┘    (joining)           │   of a bootstrap
//!            │                          store (redb) ◀── RecordStore calls              │   server
//!            └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Run-loop contract: one task ([`runtime`]) owns the node; it feeds each input with the current time
//! ([`clock::now`]; [`clock::monotonic`] for rate limits: the only clock reads), commits the store, drains
//! `poll_output` until the next deadline, and sleeps until that deadline or the next input. All queues
//! are bounded. The shell makes no protocol decision: links are opened, closed and used only when the
//! node says so.

pub mod cli;
pub mod clock;
pub mod http;
pub mod identity;
pub mod limit;
pub mod rtc;
pub mod runtime;
pub mod server;
pub mod signal_client;
pub mod store;
