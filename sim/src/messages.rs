//! App messages for the benchmark: send between wallets through the node API, then judge each one from the
//! event logs — did the send resolve `Delivered` or `Stored`, did the recipient's node emit it, after how
//! many links and how long.
//!
//! Each payload starts with the message's index (8 bytes) so the recipient's `MessageReceived` can be
//! matched to its send without looking inside the protocol.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use chordial_core::node::{Event, FailReason, RequestId, SendOutcome};
use chordial_core::Timestamp;

use crate::metrics::Summary;
use crate::world::World;

/// The app origin benchmark messages are sent from.
pub const BENCH_APP: &str = "https://bench.chordial.invalid";

/// Payload bytes of a benchmark message.
pub const BENCH_PAYLOAD: usize = 256;

struct Sent {
    from: usize,
    from_restarts: u32,
    to: usize,
    at: Timestamp,
    request: RequestId,
}

/// What became of a set of messages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MessageStats {
    /// Sends the nodes accepted.
    pub sent: usize,
    /// Resolved `Delivered` (at least one session sent a receipt).
    pub delivered: usize,
    /// Resolved `Stored` (in the recipient's mailbox).
    pub stored: usize,
    /// Failed, by reason.
    pub failed: BTreeMap<String, usize>,
    /// No result by the time the batch was judged.
    pub unanswered: usize,
    /// The sender crashed before the result (left out of the ratio: nobody was left to tell).
    pub lost_with_sender: usize,
    /// `NotFound` for a recipient whose node had never joined when the message was sent: the right answer
    /// (no session of that wallet was ever announced, so there is no key to store for). Left out of the ratio.
    pub never_online: usize,
    /// Delivered messages the recipient's node emitted (a recipient that crashed right after its receipt
    /// can be missing here).
    pub received: usize,
    /// Links crossed by the frame that brought each received message.
    pub hops: Summary,
    /// Milliseconds from `send()` to the recipient's `MessageReceived` (lookup of the recipient's sessions
    /// included).
    pub latency_ms: Summary,
    /// Milliseconds from `send()` to the sender's `Delivered` (the receipt back).
    pub receipt_ms: Summary,
}

impl MessageStats {
    /// Share of judged messages (those whose sender lived, to a wallet that had been online) that were
    /// delivered or stored.
    pub fn delivered_or_stored(&self) -> f64 {
        let judged = self.sent - self.lost_with_sender - self.never_online;
        if judged == 0 {
            return 1.0;
        }
        (self.delivered + self.stored) as f64 / judged as f64
    }
}

/// Messages sent and not yet judged.
#[derive(Default)]
pub struct MessageTracker {
    sent: Vec<Sent>,
}

impl MessageTracker {
    /// A tracker with nothing sent.
    pub fn new() -> MessageTracker {
        MessageTracker::default()
    }

    /// Sends a benchmark message from node `from` to node `to`'s wallet (which need not be online).
    /// Returns whether the node accepted it.
    pub fn send(&mut self, world: &mut World, from: usize, to: usize) -> bool {
        let Some(wallet) = world.wallet_of(to) else { return false };
        let index = self.sent.len() as u64;
        let mut bytes = vec![0u8; BENCH_PAYLOAD];
        rand_core::RngCore::fill_bytes(world.rng(), &mut bytes);
        bytes[..8].copy_from_slice(&index.to_be_bytes());
        let at = world.now();
        let from_restarts = world.stats(from).restarts;
        let Some(Ok(request)) = world.with_node(from, |n, now| n.send(now, BENCH_APP, wallet, bytes)) else {
            return false;
        };
        self.sent.push(Sent { from, from_restarts, to, at, request });
        true
    }

    /// Messages sent so far.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether nothing was sent.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Whether every message has a result (or lost its sender).
    pub fn all_resolved(&self, world: &World) -> bool {
        self.sent
            .iter()
            .all(|s| world.stats(s.from).restarts != s.from_restarts || result(world, s).is_some())
    }

    /// Runs until every message has a result or `limit` passed.
    pub fn wait(&self, world: &mut World, limit: Duration) {
        let deadline = world.now().saturating_add(limit);
        while !self.all_resolved(world) && world.now() < deadline {
            world.run_for(Duration::from_millis(200));
        }
    }

    /// Judges every message sent.
    pub fn judge(&self, world: &World) -> MessageStats {
        let mut stats = MessageStats { sent: self.sent.len(), ..MessageStats::default() };
        // Received messages by index, from the recipients' logs.
        let mut received: BTreeMap<u64, (Timestamp, u8)> = BTreeMap::new();
        let recipients: std::collections::BTreeSet<usize> = self.sent.iter().map(|s| s.to).collect();
        for &i in &recipients {
            for (t, e) in world.events(i) {
                if let Event::MessageReceived { app_origin, bytes, hops, .. } = e {
                    if app_origin == BENCH_APP && bytes.len() == BENCH_PAYLOAD {
                        let k = u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
                        received.entry(k).or_insert((*t, *hops));
                    }
                }
            }
        }
        let (mut hops, mut latency, mut receipt) = (Vec::new(), Vec::new(), Vec::new());
        for (k, s) in self.sent.iter().enumerate() {
            if let Some((t, h)) = received.get(&(k as u64)) {
                stats.received += 1;
                hops.push(f64::from(*h));
                latency.push(t.since(s.at).as_secs_f64() * 1000.0);
            }
            if world.stats(s.from).restarts != s.from_restarts {
                // A new life of the sender reuses request ids: its log cannot tell this message's result.
                stats.lost_with_sender += 1;
                continue;
            }
            match result(world, s) {
                Some((t, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. })) => {
                    stats.delivered += 1;
                    receipt.push(t.since(s.at).as_secs_f64() * 1000.0);
                }
                Some((_, Event::Sent { outcome: SendOutcome::Stored, .. })) => stats.stored += 1,
                Some((_, Event::RequestFailed { reason: FailReason::NotFound, .. }))
                    if !had_joined(world, s.to, s.at) =>
                {
                    stats.never_online += 1;
                }
                Some((_, Event::RequestFailed { reason, .. })) => {
                    *stats.failed.entry(format!("{reason:?}")).or_default() += 1;
                }
                _ if !world.is_alive(s.from) => stats.lost_with_sender += 1,
                _ => stats.unanswered += 1,
            }
        }
        stats.hops = Summary::of(hops);
        stats.latency_ms = Summary::of(latency);
        stats.receipt_ms = Summary::of(receipt);
        stats
    }
}

/// Whether node `i` had joined the ring (in any of its lives) by `at`.
fn had_joined(world: &World, i: usize, at: Timestamp) -> bool {
    world.first_joined(i).is_some_and(|t| t <= at)
}

fn result(world: &World, s: &Sent) -> Option<(Timestamp, Event)> {
    world
        .events(s.from)
        .iter()
        .find(|(t, e)| {
            *t >= s.at
                && match e {
                    Event::Sent { request, .. } | Event::RequestFailed { request, .. } => {
                        *request == s.request
                    }
                    _ => false,
                }
        })
        .cloned()
}
