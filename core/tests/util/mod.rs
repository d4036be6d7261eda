//! A tiny deterministic in-test network for a handful of real nodes: fixed latency, links paired by fake
//! session descriptions, bootstrap through node 0. (The many-node simulator is chordial-sim.)
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};

use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::SessionKey;
use chordial_core::node::{Config, Event, LinkEvent, LinkId, LinkRole, Node, Output};
use chordial_core::{Id, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const LATENCY: u64 = 20;

pub enum Ev {
    Timeout(usize),
    LocalDesc(usize, LinkId, String),
    Opened(usize, LinkId),
    Closed(usize, LinkId),
    Frame(usize, LinkId, Vec<u8>),
    BootOffer { to: usize, from: usize, link: LinkId, body: Vec<u8> },
    BootAnswer { to: usize, link: LinkId, body: Vec<u8> },
}

pub struct Net {
    pub now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    pub nodes: Vec<Option<Node>>,
    /// What each node was made from, to restart it with the same identity.
    pub identities: Vec<(SessionKey, Delegation, WalletKey)>,
    /// (node, link) → (peer node, peer link)
    pairs: HashMap<(usize, LinkId), (usize, LinkId)>,
    /// answer-side token → offerer (node, link)
    offers: HashMap<(usize, LinkId), (usize, LinkId)>,
    http: HashMap<(usize, u64), (usize, LinkId)>,
    next_req: u64,
    /// Pairing offers made (node, link, offer) and answers made ((node, request) → answer): a test carries
    /// them between nodes the way a person would.
    pub pairing_offers: Vec<(usize, LinkId, Vec<u8>)>,
    pub pairing_answers: HashMap<(usize, u64), Vec<u8>>,
    pub events: Vec<(usize, Event)>,
    /// When `Some`, every frame a node transmits, as (node, its link, bytes): a test that plays a
    /// misbehaving relay reads what crossed the wire here.
    pub tap: Option<Vec<(usize, LinkId, Vec<u8>)>>,
    deadlines: Vec<u64>,
}

impl Net {
    pub fn new(n: usize, seed: u64) -> Net {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let now = 1_800_000_000_000;
        let mut identities = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let session = SessionKey::generate(&mut rng);
            let wallet = WalletKey::generate(&mut rng);
            let req = DelegationRequest::new("test.local", wallet.address(), 1, "test");
            let msg = delegation_message(session.public(), &req, Timestamp(now), &mut rng);
            let delegation = Delegation::sign(&msg, &wallet);
            nodes.push(Some(Self::make(i, &session, &delegation, now, 0)));
            identities.push((session, delegation, wallet));
        }
        let mut net = Net {
            identities,
            now,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            pairs: HashMap::new(),
            offers: HashMap::new(),
            http: HashMap::new(),
            pairing_offers: Vec::new(),
            pairing_answers: HashMap::new(),
            next_req: 0,
            events: vec![],
            tap: None,
            deadlines: vec![0; n],
        };
        for i in 0..n {
            net.drain(i);
        }
        net
    }

    fn make(i: usize, session: &SessionKey, delegation: &Delegation, now: u64, generation: u64) -> Node {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
        seed[8..16].copy_from_slice(&generation.to_be_bytes());
        Node::new(Config::new("test", seed), session.clone(), delegation.clone(), Timestamp(now)).unwrap()
    }

    /// Crashes node `i` (peers notice only by timeouts).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        self.pairs.retain(|(a, _), (b, _)| *a != i && *b != i);
    }

    /// Starts node `i` again with its stored identity (same session and delegation, fresh state) and
    /// bootstraps it through node 0.
    pub fn restart(&mut self, i: usize) {
        let (session, delegation, _) = &self.identities[i];
        self.nodes[i] = Some(Self::make(i, session, delegation, self.now, self.now));
        let now = Timestamp(self.now);
        self.nodes[i].as_mut().unwrap().connect_bootstrap(now, "sim://0");
        self.deadlines[i] = 0;
        self.drain(i);
    }

    /// Events of node `i` so far.
    pub fn events_of(&self, i: usize) -> Vec<&Event> {
        self.events.iter().filter(|(n, _)| *n == i).map(|(_, e)| e).collect()
    }

    pub fn at(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), ev);
    }

    pub fn drain(&mut self, i: usize) {
        loop {
            let Some(node) = self.nodes[i].as_mut() else { return };
            let out = node.poll_output();
            if std::env::var("TRACE").is_ok() {
                match &out {
                    Output::Timeout(_) => {}
                    Output::Transmit { link, bytes } => {
                        if bytes[0] != 0x10 || bytes.len() > 30 {
                            eprintln!(
                                "{} node {i}: transmit {:?} kind {} len {}",
                                self.now,
                                link,
                                bytes[0],
                                bytes.len()
                            )
                        }
                    }
                    o => eprintln!("{} node {i}: {:?}", self.now, o),
                }
            }
            match out {
                Output::Timeout(None) => return,
                Output::Timeout(Some(t)) => {
                    // A deadline already past (a timer due at once) fires now.
                    let at = t.0.max(self.now);
                    if self.deadlines[i] != at {
                        self.deadlines[i] = at;
                        self.at(at - self.now, Ev::Timeout(i));
                    }
                    return;
                }
                Output::Transmit { link, bytes } => {
                    if let Some(tap) = self.tap.as_mut() {
                        tap.push((i, link, bytes.clone()));
                    }
                    if let Some((peer, plink)) = self.pairs.get(&(i, link)).copied() {
                        self.at(LATENCY, Ev::Frame(peer, plink, bytes));
                    }
                }
                Output::OpenLink { link, role: LinkRole::Offer } => {
                    self.at(1, Ev::LocalDesc(i, link, format!("offer:{i}:{}", link.0)))
                }
                Output::OpenLink { link, role: LinkRole::Answer(sdp) } => {
                    let parts: Vec<u64> = sdp.split(':').skip(1).map(|p| p.parse().unwrap()).collect();
                    self.offers.insert((i, link), (parts[0] as usize, LinkId(parts[1])));
                    self.at(1, Ev::LocalDesc(i, link, format!("answer:{i}:{}", link.0)))
                }
                Output::ApplyRemote { link, sdp } => {
                    let parts: Vec<u64> = sdp.split(':').skip(1).map(|p| p.parse().unwrap()).collect();
                    let (peer, plink) = (parts[0] as usize, LinkId(parts[1]));
                    self.pairs.insert((i, link), (peer, plink));
                    self.pairs.insert((peer, plink), (i, link));
                    self.at(LATENCY * 2, Ev::Opened(i, link));
                    self.at(LATENCY * 2, Ev::Opened(peer, plink));
                }
                Output::CloseLink { link } => {
                    if let Some((peer, plink)) = self.pairs.remove(&(i, link)) {
                        self.pairs.remove(&(peer, plink));
                        self.at(LATENCY, Ev::Closed(peer, plink));
                    }
                }
                Output::PairingOffer { link, offer } => self.pairing_offers.push((i, link, offer)),
                Output::BootstrapOffer { link, url, offer } => {
                    let to: usize = url.trim_start_matches("sim://").parse().unwrap();
                    self.at(LATENCY, Ev::BootOffer { to, from: i, link, body: offer });
                }
                Output::BootstrapAnswer { request, answer } => {
                    if let Some((to, link)) = self.http.remove(&(i, request)) {
                        self.at(LATENCY, Ev::BootAnswer { to, link, body: answer });
                    }
                }
                Output::PairingAnswer { request, answer } => {
                    self.pairing_answers.insert((i, request), answer);
                }
                Output::Event(e) => self.events.push((i, e)),
            }
        }
    }

    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        while let Some((&(t, s), _)) = self.queue.iter().next() {
            if t > end {
                break;
            }
            let ev = self.queue.remove(&(t, s)).unwrap();
            self.now = t;
            let now = Timestamp(t);
            let i = match ev {
                Ev::Timeout(i) => {
                    if self.deadlines[i] != t {
                        continue;
                    }
                    self.deadlines[i] = 0;
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_timeout(now);
                    }
                    i
                }
                Ev::LocalDesc(i, l, sdp) => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_local_description(now, l, sdp);
                    }
                    i
                }
                Ev::Opened(i, l) => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_link_event(now, l, LinkEvent::Opened);
                    }
                    i
                }
                Ev::Closed(i, l) => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_link_event(now, l, LinkEvent::Closed);
                    }
                    i
                }
                Ev::Frame(i, l, b) => {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_frame(now, l, &b);
                    }
                    i
                }
                Ev::BootOffer { to, from, link, body } => {
                    self.next_req += 1;
                    let req = self.next_req;
                    self.http.insert((to, req), (from, link));
                    if let Some(n) = self.nodes[to].as_mut() {
                        n.handle_bootstrap_offer(now, req, &body).unwrap();
                    }
                    to
                }
                Ev::BootAnswer { to, link, body } => {
                    if let Some(n) = self.nodes[to].as_mut() {
                        n.handle_bootstrap_answer(now, link, &body);
                    }
                    to
                }
            };
            self.drain(i);
        }
        self.now = end;
    }

    pub fn live_ids(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = self.nodes.iter().flatten().map(|n| n.id()).collect();
        ids.sort();
        ids
    }

    pub fn assert_ring_exact(&self, r: usize) {
        let ids = self.live_ids();
        for (i, n) in self.nodes.iter().enumerate().filter(|_| std::env::var("TRACE").is_ok()) {
            if let Some(n) = n {
                let st = n.inspect().status();
                eprintln!(
                    "node {i} {:?} succ {:?} pred {:?} links {:?} counters {:?}",
                    n.id(),
                    st.successors,
                    st.predecessor,
                    st.links.iter().map(|l| (l.peer, l.open, l.roles.clone())).collect::<Vec<_>>(),
                    st.counters
                );
            }
        }

        for n in self.nodes.iter().flatten() {
            let pos = ids.iter().position(|x| *x == n.id()).unwrap();
            let want: Vec<Id> = (1..=r.min(ids.len() - 1)).map(|k| ids[(pos + k) % ids.len()]).collect();
            assert_eq!(n.inspect().successors(), &want[..], "successors of {:?}", n.id());
            let pred = ids[(pos + ids.len() - 1) % ids.len()];
            assert_eq!(n.inspect().predecessor(), Some(pred), "predecessor of {:?}", n.id());
        }
    }

    pub fn owner(&self, key: Id) -> Id {
        let ids = self.live_ids();
        ids.iter().copied().find(|id| *id >= key).unwrap_or(ids[0])
    }

    pub fn join_all(&mut self) {
        for i in 1..self.nodes.len() {
            let now = Timestamp(self.now);
            self.nodes[i].as_mut().unwrap().connect_bootstrap(now, "sim://0");
            self.drain(i);
            self.run_for(500);
        }
    }
}

/// The envelope in a routed frame (docs/protocol.md, "Link frames"): after the kind byte, the frame's
/// number on the link, and the acknowledgement range kinds 0x05 and 0x06 carry (varints all).
pub fn envelope_of(frame: &[u8]) -> &[u8] {
    let varints = if frame[0] & 0x04 != 0 { 3 } else { 1 };
    let mut at = 1;
    for _ in 0..varints {
        while frame[at] & 0x80 != 0 {
            at += 1;
        }
        at += 1;
    }
    &frame[at..]
}
