//! Messages between random wallets on a converged ring all arrive: every send resolves `Delivered` with the
//! recipient's one session, every recipient gets each message exactly once with its plaintext, sender
//! wallet and app origin intact, and no other node gets anything.
//!
//! Sizes: 150 nodes by default, 500 (the brief's size) with `CHORDIAL_SIM_FULL=1`; 1,000 random
//! sender/recipient pairs either way, a few of them at the 64 KiB payload limit.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chordial_core::e2e::MAX_PAYLOAD;
use chordial_core::node::{Event, SendOutcome};
use chordial_sim::scenario::{assert_budget_held, pick, scaled};

use common::{payload, percentile, received_since, ring, send, wait_all, wallet, APP};

const SEED: u64 = 11;
const PAIRS: usize = 1_000;

#[test]
fn every_message_to_an_online_wallet_is_delivered_once_and_intact() {
    let members = scaled(150, 500);
    let mut world = ring(SEED, members, Duration::from_secs(30));
    let nodes = world.member_indices();
    assert_eq!(nodes.len(), members, "seed {SEED}: members after convergence");
    let start = world.now();

    // (sender, recipient, payload) per message index.
    let mut sent = Vec::with_capacity(PAIRS);
    let mut pending = Vec::with_capacity(PAIRS);
    for k in 0..PAIRS {
        let from = nodes[pick(world.rng(), nodes.len())];
        let mut to = nodes[pick(world.rng(), nodes.len())];
        while to == from {
            to = nodes[pick(world.rng(), nodes.len())];
        }
        let len = if k % 250 == 7 { MAX_PAYLOAD } else { 16 + pick(world.rng(), 2_000) };
        let bytes = payload(&mut world, k as u64, len);
        let to_wallet = wallet(&world, to);
        pending.push(send(&mut world, from, to_wallet, bytes.clone()));
        sent.push((from, to, bytes));
        world.run_for(Duration::from_millis(5));
    }
    let results = wait_all(&mut world, &pending, Duration::from_secs(60));
    // Late duplicates would show up after the receipts: give them time.
    world.run_for(Duration::from_secs(10));

    let mut problems = Vec::new();
    let mut latencies = Vec::new();
    for (k, (result, p)) in results.iter().zip(&pending).enumerate() {
        let to = sent[k].1;
        match result {
            Some((t, Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }))
                if sessions == &vec![world.id(to)] =>
            {
                latencies.push(t.since(p.at).as_secs_f64() * 1e3)
            }
            other => problems.push(format!("message {k} from node {} to node {to}: {other:?}", p.node)),
        }
    }

    // Every message arrives at its recipient exactly once, intact; nothing arrives anywhere else.
    let mut copies: BTreeMap<usize, usize> = BTreeMap::new();
    for i in 0..world.len() {
        for got in received_since(&world, i, start) {
            let k = u64::from_be_bytes(got.bytes[..8].try_into().expect("8 bytes")) as usize;
            match sent.get(k) {
                Some((from, to, bytes))
                    if *to == i
                        && got.from == wallet(&world, *from)
                        && got.origin == APP
                        && got.bytes == *bytes =>
                {
                    *copies.entry(k).or_default() += 1
                }
                _ => problems.push(format!("node {i} received something not meant for it as sent: {got:?}")),
            }
        }
    }
    for (k, (from, to, _)) in sent.iter().enumerate() {
        let n = copies.get(&k).copied().unwrap_or(0);
        if n != 1 {
            problems.push(format!("message {k} (node {from} → node {to}) received {n} times"));
        }
    }

    latencies.sort_by(f64::total_cmp);
    let delivered = latencies.len();
    eprintln!(
        "seed {SEED}: {members} nodes, {delivered}/{PAIRS} delivered ({:.1}%), receipt latency ms p50 {:.0} \
         p99 {:.0} max {:.0}",
        100.0 * delivered as f64 / PAIRS as f64,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0.0),
    );
    assert!(
        problems.is_empty(),
        "seed {SEED}: {} problems, first ones:\n{}",
        problems.len(),
        problems.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_budget_held(&world, SEED);
}
