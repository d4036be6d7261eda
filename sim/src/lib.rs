//! # chordial-sim
//!
//! A deterministic many-node simulator for [`chordial_core::node::Node`]: real nodes, an in-memory network,
//! a virtual clock, and the invariant checkers, scenarios and benchmarks built on them.
//!
//! ```text
//!   scenario / test / bench ──add_node, crash, restart, leave, partition, lookup──▶ World
//!                                                                                  │
//!     ┌──────────────── event queue, ordered by (virtual time, insertion seq) ◀────┤
//!     │ pop earliest                                                               │
//!     ▼                                                                            │
//!   dispatch ──handle_frame / handle_link_event / handle_timeout / …(now)──▶ Node  │
//!                                                                           │      │
//!     Transmit → delivery after latency (per-link FIFO)   ◀── poll_output() ┘      │
//!     OpenLink / ApplyRemote → SDP tokens, Opened after one RTT ───────────────────┘
//!     Timeout(t) → the node's single pending timer
//!
//!   World::ring_view() ──▶ checks::RingView ──▶ Zave properties, exact lists, link budget
//! ```
//!
//! Run-loop contract: [`world::World::run_until`] pops events in (time, sequence) order, sets the clock to the
//! event's time, feeds the event to its node with that `now`, and drains the node's outputs until it returns
//! `Output::Timeout(t)`; the node's timer is then (re)scheduled at `t`, and an older timer is ignored by its
//! generation number. Handling an output only ever schedules events, so nodes are never called re-entrantly.
//! Every random choice — identities, node seeds, latencies, jitter, loss, timeouts, scenario choices — is
//! drawn from the world's one ChaCha20 stream: a seed reproduces a run exactly.
//!
//! Modules: [`adversary`] (attacker nodes), [`durable`] (what a node keeps across a restart), [`net`] (the network model), [`world`] (the simulator), [`checks`] (invariants),
//! [`scenario`] (building blocks for tests and the benchmark), [`metrics`] (summaries), [`identity`]
//! (simulated wallets and delegations). See `docs/simulator.md`.

pub mod adversary;
pub mod checks;
pub mod crypto;
pub mod durable;
pub mod identity;
pub mod messages;
pub mod metrics;
pub mod net;
mod queue;
pub mod scenario;
pub mod world;

pub use checks::{Property, Report, RingView};
pub use world::{LookupOutcome, LookupResult, World, WorldConfig};
