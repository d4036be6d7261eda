//! # chordial-node-wasm
//!
//! The Chordial node in the browser: the core's [`Node`](chordial_core::node::Node) driven by
//! `RTCPeerConnection`, browser timers and IndexedDB, with a JavaScript API (`docs/api.md`).
//!
//! ```text
//!   JavaScript ── ChordialNode (api.rs) ─┐                        ┌─ RTCPeerConnection + one ordered
//!                                        ▼                        │  data channel per link (link.rs),
//!   browser events ──▶ shell.rs: handle_*(now, …) ──▶ Node ──▶ poll_output() ──▶ bounded send queue (queue.rs)
//!   (channel open/close/message,          ▲                       ├─ gloo timer at the next deadline
//!    timers, HTTP answers)                └───────────────────────┴─ fetch POST /v1/signal, events to JS
//! ```
//!
//! Run loop contract: every browser event is one input to the core with `now = Date.now()`; after it the
//! shell drains `poll_output` until `Timeout(deadline)`, carries out each output in order, and (re)arms one
//! timer for the deadline. Calls back into JavaScript (listeners, promise settlements) happen only after
//! the shell's state is released. Nothing here decides protocol matters; it only carries them out.
//!
//! Native builds compile only the platform-independent parts (error codes, the send queue, the views),
//! which are unit-tested on the host; the shell itself builds for `wasm32` only.

pub mod error;
pub mod pairing;
pub mod queue;
pub mod view;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod link;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use api::ChordialNode;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;
