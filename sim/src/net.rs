//! The in-memory network: latency, jitter, retransmission delay, partitions, and the SDP tokens that stand in
//! for WebRTC session descriptions.
//!
//! Everything here is a pure function of the world's seed and the arguments, so a run is reproduced by its
//! seed alone. The [`crate::world::World`] owns one [`Network`] and asks it how long a frame takes and whether
//! two nodes can reach each other.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use chordial_core::node::LinkId;

/// Parameters of the network model. [`NetConfig::default`] is a public-internet-like mix of browsers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    /// Smallest base one-way latency between two nodes.
    pub latency_min: Duration,
    /// Largest base one-way latency between two nodes.
    pub latency_max: Duration,
    /// Jitter added to every delivery, as a fraction of the pair's base latency (uniform in `[0, jitter]`).
    pub jitter: f64,
    /// Probability that a frame needs a retransmission. Data channels are reliable, so a "lost" frame is
    /// delivered late (after [`NetConfig::rto_min`]..[`NetConfig::rto_max`]), never dropped.
    pub loss: f64,
    /// Shortest extra delay of a retransmitted frame.
    pub rto_min: Duration,
    /// Longest extra delay of a retransmitted frame.
    pub rto_max: Duration,
    /// Shortest time to produce a local description (create offer/answer, gather candidates).
    pub gather_min: Duration,
    /// Longest time to produce a local description.
    pub gather_max: Duration,
    /// How long a link setup that cannot succeed (peer gone, partitioned, closed) takes to report `Failed`.
    pub ice_timeout: Duration,
    /// Shortest time for the live side of an open link to notice its peer is gone (ICE consent failure).
    pub consent_min: Duration,
    /// Longest time for the live side of an open link to notice its peer is gone.
    pub consent_max: Duration,
    /// An answering link whose offerer never applies the answer fails after this long.
    pub answer_timeout: Duration,
    /// A bootstrap HTTP request with no response fails after this long.
    pub http_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(150),
            jitter: 0.1,
            loss: 0.0,
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_millis(1000),
            gather_min: Duration::from_millis(1),
            gather_max: Duration::from_millis(5),
            ice_timeout: Duration::from_secs(5),
            consent_min: Duration::from_secs(5),
            consent_max: Duration::from_secs(10),
            answer_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// The network: the model parameters, the seed that fixes every pair's base latency, and the partition.
#[derive(Clone, Debug)]
pub struct Network {
    /// The model parameters (may be changed between steps, e.g. to stop injecting loss).
    pub config: NetConfig,
    seed: u64,
    /// Partition group per node index; nodes reach each other only within a group. Empty = no partition.
    groups: Vec<u32>,
}

impl Network {
    /// A network with no partition.
    pub fn new(config: NetConfig, seed: u64) -> Self {
        Network { config, seed, groups: Vec::new() }
    }

    /// The base one-way latency between nodes `a` and `b` (symmetric, fixed for the run).
    pub fn base_latency(&self, a: usize, b: usize) -> Duration {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let h = mix(self.seed ^ mix((lo as u64) << 32 | hi as u64));
        let min = millis(self.config.latency_min);
        let span = millis(self.config.latency_max).saturating_sub(min) + 1;
        Duration::from_millis(min + h % span)
    }

    /// One sampled one-way delay from `a` to `b`: base latency, jitter, and a retransmission with
    /// probability [`NetConfig::loss`].
    pub fn sample_delay(&self, rng: &mut ChaCha20Rng, a: usize, b: usize) -> Duration {
        let base = self.base_latency(a, b);
        let jitter = base.mul_f64(self.config.jitter * unit(rng));
        let mut d = base + jitter;
        if self.config.loss > 0.0 && unit(rng) < self.config.loss {
            d += uniform(rng, self.config.rto_min, self.config.rto_max);
        }
        d
    }

    /// Whether a partition separates `a` from `b`.
    pub fn partitioned(&self, a: usize, b: usize) -> bool {
        !self.groups.is_empty() && self.group(a) != self.group(b)
    }

    fn group(&self, n: usize) -> u32 {
        self.groups.get(n).copied().unwrap_or(0)
    }

    /// Splits the network: `groups[i]` is the list of node indices in group `i + 1`; nodes in no list stay
    /// in group 0 together.
    pub fn set_partition(&mut self, groups: &[Vec<usize>]) {
        let max = groups.iter().flatten().copied().max().map_or(0, |m| m + 1);
        self.groups = vec![0; max];
        for (g, members) in groups.iter().enumerate() {
            for &n in members {
                self.groups[n] = g as u32 + 1;
            }
        }
    }

    /// Removes the partition: every node reaches every other again.
    pub fn heal(&mut self) {
        self.groups.clear();
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        !self.groups.is_empty()
    }
}

/// One end of a link in the simulator: node index, incarnation (bumped on restart, because a restarted node
/// allocates link ids from zero again) and the node's own link id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The node's index in the world.
    pub node: usize,
    /// Which life of that node.
    pub incarnation: u32,
    /// The node's id for the link.
    pub link: LinkId,
}

/// Which half of the offer/answer exchange an SDP token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpKind {
    /// `sim-offer:…`
    Offer,
    /// `sim-answer:…`
    Answer,
}

/// The opaque "session description" the simulator hands a node: `sim-offer:<node>:<incarnation>:<link>`.
pub fn sdp_token(kind: SdpKind, ep: Endpoint) -> String {
    let tag = match kind {
        SdpKind::Offer => "sim-offer",
        SdpKind::Answer => "sim-answer",
    };
    format!("{tag}:{}:{}:{}", ep.node, ep.incarnation, ep.link.0)
}

/// Parses a token made by [`sdp_token`]; `None` for anything else (the node mangled or invented it).
pub fn parse_sdp_token(sdp: &str) -> Option<(SdpKind, Endpoint)> {
    let mut parts = sdp.split(':');
    let kind = match parts.next()? {
        "sim-offer" => SdpKind::Offer,
        "sim-answer" => SdpKind::Answer,
        _ => return None,
    };
    let node = parts.next()?.parse().ok()?;
    let incarnation = parts.next()?.parse().ok()?;
    let link = LinkId(parts.next()?.parse().ok()?);
    if parts.next().is_some() {
        return None;
    }
    Some((kind, Endpoint { node, incarnation, link }))
}

/// The bootstrap URL of node `n`: `sim://<n>`.
pub fn bootstrap_url(n: usize) -> String {
    format!("sim://{n}")
}

/// Parses a URL made by [`bootstrap_url`].
pub fn parse_bootstrap_url(url: &str) -> Option<usize> {
    url.strip_prefix("sim://")?.parse().ok()
}

/// A uniform sample in `[lo, hi]` at millisecond resolution.
pub fn uniform(rng: &mut ChaCha20Rng, lo: Duration, hi: Duration) -> Duration {
    let (lo, hi) = (millis(lo), millis(hi));
    if hi <= lo {
        return Duration::from_millis(lo);
    }
    Duration::from_millis(lo + rng.next_u64() % (hi - lo + 1))
}

/// A uniform sample in `[0, 1)`.
pub fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// SplitMix64's finaliser: a cheap, well-spread hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn latency_is_symmetric_bounded_and_seeded() {
        let net = Network::new(NetConfig::default(), 7);
        for a in 0..50 {
            for b in 0..50 {
                let l = net.base_latency(a, b);
                assert_eq!(l, net.base_latency(b, a));
                assert!(l >= Duration::from_millis(10) && l <= Duration::from_millis(150), "{l:?}");
            }
        }
        let other = Network::new(NetConfig::default(), 8);
        assert!((0..50).any(|b| net.base_latency(0, b) != other.base_latency(0, b)));
    }

    #[test]
    fn loss_becomes_delay() {
        let cfg = NetConfig { loss: 1.0, ..NetConfig::default() };
        let net = Network::new(cfg, 1);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let d = net.sample_delay(&mut rng, 1, 2);
        assert!(d >= net.base_latency(1, 2) + Duration::from_millis(200));
    }

    #[test]
    fn partitions_split_and_heal() {
        let mut net = Network::new(NetConfig::default(), 1);
        assert!(!net.partitioned(0, 5));
        net.set_partition(&[vec![0, 1], vec![2, 3]]);
        assert!(!net.partitioned(0, 1));
        assert!(net.partitioned(1, 2));
        assert!(net.partitioned(3, 9), "nodes in no group form group 0");
        assert!(!net.partitioned(8, 9));
        net.heal();
        assert!(!net.partitioned(1, 2));
    }

    #[test]
    fn tokens_round_trip() {
        let ep = Endpoint { node: 12, incarnation: 3, link: LinkId(44) };
        assert_eq!(parse_sdp_token(&sdp_token(SdpKind::Offer, ep)), Some((SdpKind::Offer, ep)));
        assert_eq!(parse_sdp_token(&sdp_token(SdpKind::Answer, ep)), Some((SdpKind::Answer, ep)));
        assert_eq!(parse_sdp_token("v=0\r\n"), None);
        assert_eq!(parse_sdp_token("sim-offer:1:2:3:4"), None);
        assert_eq!(parse_bootstrap_url(&bootstrap_url(17)), Some(17));
        assert_eq!(parse_bootstrap_url("https://x"), None);
    }
}
