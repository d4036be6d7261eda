//! Pairing without a server: an offer and an answer carried between two nodes by a person, at a person's
//! speed (a minute per step, well past the 15 s setup limit of other links). Whichever side is alone joins the
//! other's ring; pasted mistakes are refused and change nothing; offers expire.

mod util;

use chordial_core::node::{PairingError, PAIRING_TIMEOUT};
use chordial_core::wire::envelope::DecodeError;
use chordial_core::Timestamp;
use util::Net;

/// A person's pause between two steps.
const HUMAN: u64 = 60_000;

fn now(net: &Net) -> Timestamp {
    Timestamp(net.now)
}

/// Node `i` makes a pairing offer; returns its bytes once the (fake) shell produced them.
fn offer(net: &mut Net, i: usize) -> Vec<u8> {
    let t = now(net);
    let link = net.nodes[i].as_mut().unwrap().pair_offer(t).expect("pair_offer");
    net.drain(i);
    net.run_for(10);
    let pos = net.pairing_offers.iter().position(|(n, l, _)| *n == i && *l == link).expect("offer made");
    net.pairing_offers.remove(pos).2
}

/// Node `j` takes an offer; returns the answer's bytes.
fn answer(net: &mut Net, j: usize, offer: &[u8]) -> Result<Vec<u8>, PairingError> {
    let request = 1_000_000 + net.now;
    let t = now(net);
    let r = net.nodes[j].as_mut().unwrap().handle_pairing_offer(t, request, offer);
    net.drain(j);
    let link = r?;
    assert!(net.nodes[j]
        .as_ref()
        .unwrap()
        .inspect()
        .status()
        .links
        .iter()
        .any(|l| l.link == link && !l.open));
    net.run_for(10);
    Ok(net.pairing_answers.remove(&(j, request)).expect("answer made"))
}

/// Node `i` takes the answer to its offer.
fn complete(net: &mut Net, i: usize, answer: &[u8]) -> Result<(), PairingError> {
    let t = now(net);
    let r = net.nodes[i].as_mut().unwrap().handle_pairing_answer(t, answer).map(|_| ());
    net.drain(i);
    r
}

fn open_links(net: &Net, i: usize) -> usize {
    net.nodes[i].as_ref().unwrap().inspect().status().links.iter().filter(|l| l.open).count()
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

#[test]
fn two_lone_nodes_pair_at_a_persons_speed_and_form_a_ring() {
    let mut net = Net::new(2, 7);
    let o = offer(&mut net, 0);
    net.run_for(HUMAN);
    let a = answer(&mut net, 1, &o).expect("the offer is accepted a minute later");
    net.run_for(HUMAN);
    complete(&mut net, 0, &a).expect("the answer is accepted a minute later");
    net.run_for(10_000);
    net.assert_ring_exact(4);
    assert_eq!(open_links(&net, 0), 1);
    let roles = &net.nodes[0].as_ref().unwrap().inspect().status().links[0].roles;
    assert!(roles.iter().any(|r| r == "successor"), "roles {roles:?}");
    // The ring holds: the link is kept (the ring needs it), not closed as idle.
    net.run_for(60_000);
    net.assert_ring_exact(4);
}

#[test]
fn a_lone_offerer_joins_the_answerers_ring() {
    let mut net = Net::new(4, 8);
    for i in 1..3 {
        let t = now(&net);
        net.nodes[i].as_mut().unwrap().connect_bootstrap(t, "sim://0");
        net.drain(i);
        net.run_for(500);
    }
    net.run_for(10_000);
    let o = offer(&mut net, 3);
    net.run_for(HUMAN);
    let a = answer(&mut net, 1, &o).unwrap();
    net.run_for(HUMAN);
    complete(&mut net, 3, &a).unwrap();
    net.run_for(30_000);
    net.assert_ring_exact(4);
}

#[test]
fn an_offerer_in_a_ring_brings_in_a_lone_answerer() {
    let mut net = Net::new(4, 9);
    for i in 1..3 {
        let t = now(&net);
        net.nodes[i].as_mut().unwrap().connect_bootstrap(t, "sim://0");
        net.drain(i);
        net.run_for(500);
    }
    net.run_for(10_000);
    let o = offer(&mut net, 2);
    net.run_for(HUMAN);
    let a = answer(&mut net, 3, &o).unwrap();
    net.run_for(HUMAN);
    complete(&mut net, 2, &a).unwrap();
    net.run_for(30_000);
    net.assert_ring_exact(4);
}

#[test]
fn pasted_mistakes_are_refused_and_change_nothing() {
    let mut net = Net::new(3, 10);
    let o = offer(&mut net, 0);
    let other = offer(&mut net, 2); // another node's offer

    // On the answering side.
    assert!(matches!(answer(&mut net, 1, b"hello"), Err(PairingError::Malformed(DecodeError::Truncated(5)))));
    let tampered = flip(&o, o.len() - 10);
    assert!(matches!(
        answer(&mut net, 1, &tampered),
        Err(PairingError::Malformed(DecodeError::BadSignature))
    ));
    assert!(matches!(answer(&mut net, 0, &o), Err(PairingError::OwnCode)));

    let a = answer(&mut net, 1, &o).unwrap();
    assert!(matches!(answer(&mut net, 1, &o), Err(PairingError::AlreadyUsed)));
    assert!(matches!(answer(&mut net, 1, &a), Err(PairingError::OwnCode)));
    assert!(matches!(answer(&mut net, 2, &a), Err(PairingError::WrongKind { expected: "offer" })));

    // On the offering side.
    assert!(matches!(complete(&mut net, 0, &o), Err(PairingError::OwnCode)));
    assert!(matches!(complete(&mut net, 0, &other), Err(PairingError::WrongKind { expected: "answer" })));
    let tampered = flip(&a, 200);
    assert!(matches!(
        complete(&mut net, 0, &tampered),
        Err(PairingError::Malformed(DecodeError::BadSignature))
    ));
    // An answer to node 2's offer is no answer to node 0's.
    let a2 = answer(&mut net, 1, &other).unwrap();
    assert!(matches!(complete(&mut net, 0, &a2), Err(PairingError::NoMatchingOffer)));
    net.run_for(HUMAN);

    // After all that, node 0's offer still waits, and the right answer links the two.
    complete(&mut net, 0, &a).expect("the right answer");
    assert!(matches!(complete(&mut net, 0, &a), Err(PairingError::NoMatchingOffer)), "used once");
    net.run_for(10_000);
    assert_eq!(open_links(&net, 0), 1);
    assert_eq!(open_links(&net, 1), 1, "only node 0's link opened on node 1 (node 2 never completed)");
    let st = net.nodes[1].as_ref().unwrap().inspect().status();
    assert_eq!(st.successors, vec![net.nodes[0].as_ref().unwrap().id()]);
}

#[test]
fn unanswered_offers_expire_and_close_their_link() {
    let mut net = Net::new(2, 11);
    let o = offer(&mut net, 0);
    assert_eq!(net.nodes[0].as_ref().unwrap().inspect().status().links.len(), 1);
    net.run_for(PAIRING_TIMEOUT.as_millis() as u64 - 5_000);
    assert_eq!(
        net.nodes[0].as_ref().unwrap().inspect().status().links.len(),
        1,
        "still waiting just before the limit"
    );
    net.run_for(10_000);
    assert_eq!(net.nodes[0].as_ref().unwrap().inspect().status().links.len(), 0, "dropped after the limit");
    assert!(matches!(answer(&mut net, 1, &o), Err(PairingError::Expired)));
}

#[test]
fn an_answer_too_late_finds_no_offer() {
    let mut net = Net::new(2, 12);
    let o = offer(&mut net, 0);
    let a = answer(&mut net, 1, &o).unwrap();
    net.run_for(PAIRING_TIMEOUT.as_millis() as u64 + 5_000);
    assert!(matches!(complete(&mut net, 0, &a), Err(PairingError::NoMatchingOffer)));
    assert_eq!(
        net.nodes[1].as_ref().unwrap().inspect().status().links.len(),
        0,
        "the answering side gave up too"
    );
}

#[test]
fn at_most_a_few_offers_wait_at_once() {
    let mut net = Net::new(1, 13);
    for _ in 0..chordial_core::node::MAX_PAIRINGS {
        offer(&mut net, 0);
    }
    let t = now(&net);
    assert!(matches!(net.nodes[0].as_mut().unwrap().pair_offer(t), Err(PairingError::Busy)));
}

#[test]
fn two_rings_merge_through_a_pairing() {
    let mut net = Net::new(6, 14);
    for (i, via) in [(1, 0), (2, 0), (4, 3), (5, 3)] {
        let t = now(&net);
        net.nodes[i].as_mut().unwrap().connect_bootstrap(t, &format!("sim://{via}"));
        net.drain(i);
        net.run_for(500);
    }
    net.run_for(10_000);
    let ids: Vec<_> = net.nodes.iter().map(|n| n.as_ref().unwrap().id()).collect();
    for (i, others) in [(0, [3, 4, 5]), (3, [0, 1, 2])] {
        let st = net.nodes[i].as_ref().unwrap().inspect().status();
        assert_eq!(st.successors.len(), 2, "two separate rings of three");
        assert!(others.iter().all(|o| !st.successors.contains(&ids[*o])));
    }
    let o = offer(&mut net, 2);
    net.run_for(HUMAN);
    let a = answer(&mut net, 4, &o).unwrap();
    net.run_for(HUMAN);
    complete(&mut net, 2, &a).unwrap();
    net.run_for(60_000);
    net.assert_ring_exact(4);
}
