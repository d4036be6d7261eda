//! A handful of real nodes on a tiny in-test network with a fixed latency: the ring forms, lookups find the
//! true owner, and a node's leave or crash is repaired. (The many-node scenarios live in chordial-sim.)
//! Set `TRACE=1` to print every output but pings, and the nodes' state when a ring check runs.

mod util;

use std::collections::HashMap;
use std::time::Duration;

use chordial_core::node::Event;
use chordial_core::{Id, Timestamp};
use util::Net;

#[test]
fn six_nodes_form_an_exact_ring_and_look_up_owners() {
    let mut net = Net::new(6, 1);
    net.join_all();
    net.run_for(30_000);
    net.assert_ring_exact(4);
    let mut expected = HashMap::new();
    for k in 0..50u64 {
        let key = Id::hash(&[&k.to_be_bytes()]);
        let from = (k as usize) % 6;
        let now = Timestamp(net.now);
        let req = net.nodes[from].as_mut().unwrap().lookup(now, key);
        expected.insert((from, req), net.owner(key));
        net.drain(from);
    }
    net.run_for(5_000);
    let mut done = 0;
    for (i, e) in &net.events {
        if let Event::LookupDone { request, owner, .. } = e {
            if let Some(want) = expected.get(&(*i, *request)) {
                assert_eq!(owner, want);
                done += 1;
            }
        }
        if let Event::RequestFailed { request, reason } = e {
            assert!(!expected.contains_key(&(*i, *request)), "lookup failed: {reason}");
        }
    }
    assert_eq!(done, 50);
    for n in net.nodes.iter().flatten() {
        assert!(n.inspect().link_count() <= n.config().link_cap());
    }
}

#[test]
fn ring_repairs_after_leave_and_crash() {
    let mut net = Net::new(8, 2);
    net.join_all();
    net.run_for(30_000);
    net.assert_ring_exact(4);
    let now = Timestamp(net.now);
    net.nodes[3].as_mut().unwrap().leave(now);
    net.drain(3);
    net.run_for(1_000);
    // The leave ends with Event::Left, no link left and no timer armed: the shell may drop the node.
    assert!(net.events_of(3).iter().any(|e| **e == Event::Left), "no Left event after the grace");
    let left = net.nodes[3].as_ref().unwrap();
    assert_eq!((left.inspect().link_count(), left.poll_timeout()), (0, None));
    net.nodes[3] = None;
    net.nodes[5] = None; // crash: peers only notice by timeouts
    net.run_for(Duration::from_secs(40).as_millis() as u64);
    net.assert_ring_exact(4);
}

/// A node whose whole successor list crashes at once must not take the predecessor that keeps notifying it
/// as its successor. That would point it backwards round the ring, claiming (through its own notifies)
/// ranges it does not own, and it would then walk back one node a round. It finds its successor again.
#[test]
fn a_node_that_loses_every_successor_never_points_back_at_its_predecessor() {
    let mut net = Net::new(16, 3);
    net.join_all();
    net.run_for(30_000);
    net.assert_ring_exact(4);
    let index_of =
        |net: &Net, id: Id| net.nodes.iter().position(|n| n.as_ref().is_some_and(|n| n.id() == id));
    // A node whose four successors can all crash (node 0 is everyone's bootstrap and stays).
    let j = (1..16)
        .find(|&j| {
            let n = net.nodes[j].as_ref().unwrap();
            n.inspect().successors().iter().all(|s| index_of(&net, *s) != Some(0))
        })
        .expect("some node has four successors other than node 0");
    let lost: Vec<usize> = net.nodes[j]
        .as_ref()
        .unwrap()
        .inspect()
        .successors()
        .iter()
        .map(|s| index_of(&net, *s).unwrap())
        .collect();
    for i in &lost {
        net.crash(*i);
    }
    let crashed_at = net.now;
    for _ in 0..400 {
        net.run_for(100);
        let ids = net.live_ids();
        for n in net.nodes.iter().flatten() {
            let pos = ids.iter().position(|x| *x == n.id()).unwrap();
            let pred = ids[(pos + ids.len() - 1) % ids.len()];
            assert_ne!(
                n.inspect().successors().first(),
                Some(&pred),
                "{} ms after the crash, {:?} took its predecessor as its successor",
                net.now - crashed_at,
                n.id()
            );
        }
    }
    net.assert_ring_exact(4);
}

/// One end's pings keep a link alive for both, but each end still measures its own round-trip time (its
/// acknowledgement timeouts and the popup's link list read it): every link open for a few ping intervals
/// has an RTT on both ends, the one the peer pings included.
#[test]
fn both_ends_of_every_link_know_its_round_trip_time() {
    let mut net = Net::new(6, 1);
    net.join_all();
    net.run_for(30_000);
    net.assert_ring_exact(4);
    let open_links = |net: &Net| -> Vec<(usize, chordial_core::node::LinkId)> {
        net.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.as_ref()?)))
            .flat_map(|(i, n)| n.inspect().links().into_iter().filter(|l| l.open).map(move |l| (i, l.link)))
            .collect()
    };
    let before = open_links(&net);
    net.run_for(5_000);
    let still_open: Vec<_> = open_links(&net).into_iter().filter(|l| before.contains(l)).collect();
    assert!(still_open.len() >= 12, "a ring of six keeps its links: {still_open:?}");
    for (i, link) in still_open {
        let status = net.nodes[i].as_ref().unwrap().inspect().link(link).expect("the link is there");
        assert!(status.rtt.is_some(), "node {i} has no round-trip time on its link {link:?}: {status:?}");
    }
}
