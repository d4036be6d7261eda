//! # chordial-core
//!
//! The whole Chordial protocol as a sans-IO library: no sockets, no clock, no global RNG, no async runtime.
//!
//! ```text
//!            shell (node-wasm / chordial-server / chordial-sim)
//!   frames, link events, SDP, timeouts, API calls        Transmit, OpenLink, CloseLink, Event, Timeout
//!                     │  handle_*(now, …)                         ▲  poll_output()
//!                     ▼                                          │
//!   ┌──────────────────────────────── Node ───────────────────────────────────┐
//!   │ identity (session key, delegation) · wire (envelope, replay) · e2e      │
//!   └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Time is always an argument ([`time::Timestamp`], Unix milliseconds from the shell) and randomness comes
//! from a seeded RNG the caller injects, so the same inputs give the same outputs.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod e2e;
pub mod id;
pub mod identity;
pub mod node;
pub mod time;
pub mod wire;

mod serde_bytes_array;

pub use id::Id;
pub use time::Timestamp;
