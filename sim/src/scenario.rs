//! Building blocks the scenario tests and the benchmark share: a stable base, mass joins, convergence,
//! lookup batches, the churn model and seeded random fault schedules.

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use chordial_core::{Id, Timestamp};

use crate::checks::{Property, Report};
use crate::messages::{MessageStats, MessageTracker};
use crate::metrics::LookupStats;
use crate::net::{self, NetConfig};
use crate::world::{World, WorldConfig};

/// A random id (a key or a point on the ring).
pub fn random_id(rng: &mut ChaCha20Rng) -> Id {
    let mut b = [0u8; 20];
    rng.fill_bytes(&mut b);
    Id(b)
}

/// A uniform index in `0..n` (`n > 0`).
pub fn pick(rng: &mut ChaCha20Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// An exponentially distributed delay with the given mean.
pub fn exponential(rng: &mut ChaCha20Rng, mean: Duration) -> Duration {
    let u = net::unit(rng);
    mean.mul_f64(-(1.0 - u).ln())
}

/// Builds a stable base of `n` nodes: a founder, then the others joining through it a second apart. Runs
/// until every successor list is exactly right (at most `limit`). Returns their indices.
pub fn build_base(world: &mut World, n: usize, limit: Duration) -> Result<Vec<usize>, String> {
    let founder = world.add_node(None);
    let mut base = vec![founder];
    for _ in 1..n {
        world.run_for(Duration::from_secs(1));
        base.push(world.add_node(Some(founder)));
    }
    match run_until_exact(world, limit, Duration::from_millis(500)) {
        Some(_) => Ok(base),
        None => Err(format!(
            "the base of {n} did not converge within {limit:?}:\n{}",
            world.ring_view().check_all()
        )),
    }
}

/// Runs until every member's successor list and predecessor are exactly right and every alive node has
/// joined, checking every `poll`. Returns the virtual time it took, or `None` if `limit` passed first.
pub fn run_until_exact(world: &mut World, limit: Duration, poll: Duration) -> Option<Duration> {
    let start = world.now();
    let deadline = start.saturating_add(limit);
    loop {
        if world.members().len() == world.alive_count() && world.ring_view().exact().ok() {
            return Some(world.now().since(start));
        }
        if world.now() >= deadline {
            return None;
        }
        world.run_until(world.now().saturating_add(poll).min(deadline));
    }
}

/// Adds `count` nodes, arriving uniformly over `spread`, each bootstrapping through a random node of `via`.
/// Returns their indices. The clock ends at the last arrival.
pub fn join_nodes(world: &mut World, count: usize, via: &[usize], spread: Duration) -> Vec<usize> {
    let start = world.now();
    let mut arrivals: Vec<Duration> =
        (0..count).map(|_| net::uniform(world.rng(), Duration::ZERO, spread)).collect();
    arrivals.sort();
    let mut added = Vec::with_capacity(count);
    for at in arrivals {
        world.run_until(start.saturating_add(at));
        added.push(world.add_node_via(via));
    }
    added
}

/// Grows the network to `target` alive nodes in waves: each wave at most doubles the membership, its nodes
/// bootstrapping through random current members and arriving over `wave`; then `settle` passes before the
/// next wave. Joining through members (not only the base) keeps any one bootstrap endpoint from being the
/// bottleneck of a large simulated join.
pub fn grow_in_waves(world: &mut World, target: usize, wave: Duration, settle: Duration) -> Vec<usize> {
    let mut added = Vec::new();
    while world.alive_count() < target {
        let via = world.member_indices();
        let count = (target - world.alive_count()).min(via.len().max(1));
        added.extend(join_nodes(world, count, &via, wave));
        world.run_for(settle);
    }
    added
}

/// Asks `count` lookups of random keys from random members, one every `spacing`, then runs until all have
/// finished (at most `limit` after the last). Each answer is checked against the true owner at that time.
pub fn lookup_batch(world: &mut World, count: usize, spacing: Duration, limit: Duration) -> LookupStats {
    world.take_lookups();
    let members = world.member_indices();
    let mut asked = 0usize;
    for _ in 0..count {
        let origin = members[pick(world.rng(), members.len())];
        let key = random_id(world.rng());
        if world.is_member(origin) && world.lookup(origin, key).is_some() {
            asked += 1;
        }
        world.run_for(spacing);
    }
    let deadline = world.now().saturating_add(limit);
    while world.lookups_in_flight() > 0 && world.now() < deadline {
        world.run_for(Duration::from_millis(100));
    }
    let outcomes = world.take_lookups();
    LookupStats::of(&outcomes, asked.saturating_sub(outcomes.len()))
}

/// The churn model: membership events as a Poisson process.
#[derive(Clone, Debug)]
pub struct ChurnConfig {
    /// Membership events (a join or a crash) per stabilization interval per 100 members.
    pub rate: f64,
    /// Probability that an event is a join (else a crash).
    pub join_probability: f64,
    /// Probability that a join restarts a crashed node with its old identity rather than adding a new one.
    pub restart_probability: f64,
    /// Lookups per second over the whole network.
    pub lookups_per_sec: f64,
    /// App messages per second over the whole network, from random members to the wallets of random
    /// nodes ever created (online or not).
    pub messages_per_sec: f64,
    /// Nodes never crashed (the stable base).
    pub protected: Vec<usize>,
    /// Bootstrap endpoints for joins.
    pub via: Vec<usize>,
}

/// What a churn run did and saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChurnReport {
    /// Virtual seconds of churn.
    pub duration_s: f64,
    /// New nodes added.
    pub joins: usize,
    /// Crashed nodes restarted.
    pub restarts: usize,
    /// Nodes crashed.
    pub crashes: usize,
    /// Lookups asked during the churn, each checked against the true owner when it was answered.
    pub lookups: LookupStats,
    /// Lookups whose origin crashed before the answer came (left out of `lookups`).
    pub lookups_lost_with_origin: usize,
    /// Messages sent during the churn and what became of them.
    pub messages: MessageStats,
    /// Link creations (`OpenLink`) per node-hour alive during the run.
    pub link_creations_per_node_hour: f64,
    /// Node-hours simulated.
    pub node_hours: f64,
}

/// Runs the churn model for `duration`, then lets outstanding lookups finish (no more churn).
pub fn run_churn(world: &mut World, churn: &ChurnConfig, duration: Duration) -> ChurnReport {
    world.take_lookups();
    let stabilize = world.node_config().stabilize_interval;
    let protected: BTreeSet<usize> = churn.protected.iter().copied().collect();
    let opens_before: u64 = (0..world.len()).map(|i| world.stats(i).link_opens).sum();
    let node_ms_before = world.world_stats().node_ms;
    let lost_before = world.world_stats().lookups_lost;
    let start = world.now();
    let end = start.saturating_add(duration);
    let mut report = ChurnReport { duration_s: duration.as_secs_f64(), ..ChurnReport::default() };
    let mut crashed: Vec<usize> = Vec::new();
    let mut asked = 0usize;

    let churn_mean = |members: usize| {
        let per_interval = churn.rate * members.max(1) as f64 / 100.0;
        stabilize.div_f64(per_interval.max(1e-9))
    };
    let lookup_mean = Duration::from_secs_f64(1.0 / churn.lookups_per_sec.max(1e-9));
    let message_mean = Duration::from_secs_f64(1.0 / churn.messages_per_sec.max(1e-9));
    let mean = churn_mean(world.members().len());
    let mut next_churn = start.saturating_add(exponential(world.rng(), mean));
    let mut next_lookup = start.saturating_add(exponential(world.rng(), lookup_mean));
    let mut next_message = if churn.messages_per_sec > 0.0 {
        start.saturating_add(exponential(world.rng(), message_mean))
    } else {
        Timestamp(u64::MAX)
    };
    let mut messages = MessageTracker::new();
    loop {
        let next = next_churn.min(next_lookup).min(next_message);
        if next >= end {
            break;
        }
        world.run_until(next);
        if next == next_message {
            if let Some(from) = random_member(world, &BTreeSet::new()) {
                let n = world.len();
                let to = pick(world.rng(), n);
                if to != from {
                    messages.send(world, from, to);
                }
            }
            next_message = world.now().saturating_add(exponential(world.rng(), message_mean));
        } else if next == next_churn {
            let join = net::unit(world.rng()) < churn.join_probability;
            if join {
                let b = churn.via[pick(world.rng(), churn.via.len())];
                if !crashed.is_empty() && net::unit(world.rng()) < churn.restart_probability {
                    let k = pick(world.rng(), crashed.len());
                    world.restart(crashed.swap_remove(k), b);
                    report.restarts += 1;
                } else {
                    world.add_node_via(&churn.via);
                    report.joins += 1;
                }
            } else if let Some(victim) = random_member(world, &protected) {
                world.crash(victim);
                crashed.push(victim);
                report.crashes += 1;
            }
            let mean = churn_mean(world.members().len());
            next_churn = world.now().saturating_add(exponential(world.rng(), mean));
        } else {
            if let Some(origin) = random_member(world, &BTreeSet::new()) {
                let key = random_id(world.rng());
                if world.lookup(origin, key).is_some() {
                    asked += 1;
                }
            }
            next_lookup = world.now().saturating_add(exponential(world.rng(), lookup_mean));
        }
    }
    world.run_until(end);
    let wait = world.node_config().request_timeout * 3;
    let deadline = world.now().saturating_add(wait);
    while world.lookups_in_flight() > 0 && world.now() < deadline {
        world.run_for(Duration::from_millis(100));
    }
    let outcomes = world.take_lookups();
    messages.wait(world, Duration::from_secs(60));
    report.messages = messages.judge(world);
    // Lookups whose origin crashed before the answer are nobody's to judge: not counted as asked.
    let lost = (world.world_stats().lookups_lost - lost_before) as usize;
    report.lookups_lost_with_origin = lost;
    report.lookups = LookupStats::of(&outcomes, asked.saturating_sub(outcomes.len() + lost));
    let opens_after: u64 = (0..world.len()).map(|i| world.stats(i).link_opens).sum();
    report.node_hours = (world.world_stats().node_ms - node_ms_before) as f64 / 3.6e6;
    report.link_creations_per_node_hour = (opens_after - opens_before) as f64 / report.node_hours.max(1e-9);
    report
}

/// A random member not in `exclude` (`None` if there is none after a bounded number of tries).
pub fn random_member(world: &mut World, exclude: &BTreeSet<usize>) -> Option<usize> {
    if world.members().is_empty() {
        return None;
    }
    for _ in 0..64 {
        let n = world.len();
        let i = pick(world.rng(), n);
        if world.is_member(i) && !exclude.contains(&i) {
            return Some(i);
        }
    }
    let candidates: Vec<usize> =
        world.member_indices().into_iter().filter(|i| !exclude.contains(i)).collect();
    (!candidates.is_empty()).then(|| candidates[pick(world.rng(), candidates.len())])
}

/// The outcome of one random fault schedule.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultRun {
    /// The seed.
    pub seed: u64,
    /// Members at the end.
    pub members: usize,
    /// Faults injected.
    pub faults: Vec<String>,
    /// Virtual seconds from the end of the faults to exact convergence (`None`: did not converge).
    pub repair_s: Option<f64>,
    /// Violations found at the end (empty when the run passed).
    pub violations: Vec<String>,
    /// Lookups asked at the end that did not return the true owner.
    pub bad_lookups: usize,
    /// Largest number of simultaneous safety-property violations seen while faults were injected.
    pub transient_zave_violations: usize,
}

impl FaultRun {
    /// Whether nothing permanent was wrong.
    pub fn passed(&self) -> bool {
        self.repair_s.is_some() && self.violations.is_empty() && self.bad_lookups == 0
    }
}

/// Limits of a random fault schedule.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// Most members at once (the base included).
    pub max_members: usize,
    /// Faults to inject.
    pub faults: usize,
    /// Virtual time over which they are injected.
    pub window: Duration,
    /// Time allowed to repair after the last fault.
    pub repair_limit: Duration,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            max_members: 12,
            faults: 10,
            window: Duration::from_secs(40),
            repair_limit: Duration::from_secs(300),
        }
    }
}

/// One seeded random fault schedule on a small ring: a stable base of `r + 1`, a random number of initial
/// joiners (up to `max_members` in all), then joins, crashes, restarts, graceful leaves and bursts of
/// retransmission delay at random times over `window`, on a network with a random latency range and loss;
/// then the faults stop and the ring must become exactly right, with all properties holding and every
/// lookup exact.
///
/// Crashes respect Correct Chord's failure model: fewer than `r` non-base nodes are down-and-unrepaired at
/// once (at most `r − 1` crashes in any 30 s).
pub fn random_fault_run(
    seed: u64,
    plan: &FaultPlan,
    tweak: fn(&mut chordial_core::node::Config),
) -> FaultRun {
    let mut run = FaultRun { seed, ..FaultRun::default() };
    let mut setup = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed_fa17);
    let latency_max = 20 + pick(&mut setup, 200) as u64;
    let net_config = NetConfig {
        latency_min: Duration::from_millis(5),
        latency_max: Duration::from_millis(latency_max),
        loss: net::unit(&mut setup) * 0.2,
        ..NetConfig::default()
    };
    let mut config = WorldConfig::new(seed);
    config.net = net_config.clone();
    config.tweak = tweak;
    // Ring faults only: the fast provider makes the same decisions as real signatures, much faster.
    config.crypto = &crate::crypto::FAST;
    let mut world = World::new(config);
    let r = world.r();
    let base = match build_base(&mut world, r + 1, plan.repair_limit) {
        Ok(b) => b,
        Err(e) => {
            run.violations.push(e);
            return run;
        }
    };
    let protected: BTreeSet<usize> = base.iter().copied().collect();
    // Fill up to a random size first, so the faults hit rings of every size up to the maximum.
    let initial = pick(world.rng(), plan.max_members.saturating_sub(base.len()) + 1);
    for k in join_nodes(&mut world, initial, &base, Duration::from_secs(5)) {
        run.faults.push(format!("initial join {k}"));
    }
    world.run_for(Duration::from_secs(5));
    let start = world.now();
    let mut times: Vec<Duration> =
        (0..plan.faults).map(|_| net::uniform(world.rng(), Duration::ZERO, plan.window)).collect();
    times.sort();
    let mut crashed: Vec<usize> = Vec::new();
    let mut crash_times: Vec<chordial_core::Timestamp> = Vec::new();
    for at in times {
        world.run_until(start.saturating_add(at));
        let z = world.ring_view().zave();
        run.transient_zave_violations = run.transient_zave_violations.max(z.total());
        let alive = world.alive_count();
        let recent = crash_times.iter().filter(|t| world.now().since(**t) < Duration::from_secs(30)).count();
        let via = base[pick(world.rng(), base.len())];
        let roll = pick(world.rng(), 100);
        let fault = match roll {
            0..=34 if alive < plan.max_members => {
                let i = world.add_node_via(&base);
                format!("join {i}")
            }
            35..=59 if recent < r - 1 => match random_member(&mut world, &protected) {
                Some(v) => {
                    world.crash(v);
                    crashed.push(v);
                    crash_times.push(world.now());
                    format!("crash {v}")
                }
                None => "crash (no candidate)".into(),
            },
            60..=74 if !crashed.is_empty() && alive < plan.max_members => {
                let k = pick(world.rng(), crashed.len());
                let v = crashed.swap_remove(k);
                world.restart(v, via);
                format!("restart {v}")
            }
            75..=84 if recent < r - 1 => match random_member(&mut world, &protected) {
                Some(v) => {
                    world.leave(v);
                    crash_times.push(world.now());
                    format!("leave {v}")
                }
                None => "leave (no candidate)".into(),
            },
            _ => {
                let loss = net::unit(world.rng()) * 0.5;
                world.net_config_mut().loss = loss;
                format!("loss {loss:.2}")
            }
        };
        run.faults.push(format!("t+{:.1}s {fault}", at.as_secs_f64()));
    }
    // Faults stop: the network is clean again. Links that stalled in the last lossy seconds are only
    // declared dead up to one link timeout later, and a lost offer is retried once before its peer is
    // dropped: those are the faults' after-effects, not permanent violations. So the ring is judged once
    // that window has passed — it must then be exact, and stay exact.
    world.net_config_mut().loss = 0.0;
    let node = world.node_config().clone();
    let aftermath = node.link_timeout + node.ping_interval * 2 + Duration::from_secs(10);
    let start = world.now();
    world.run_for(aftermath);
    // Repair time counts from the moment faults stopped.
    let exact = run_until_exact(&mut world, plan.repair_limit, Duration::from_millis(500));
    run.repair_s = exact.map(|_| world.now().since(start).as_secs_f64());
    // Let any stragglers settle, then check everything.
    world.run_for(Duration::from_secs(5));
    let report = world.ring_view().check_all();
    run.violations.extend(report.violations.iter().map(ToString::to_string));
    if !report.ok() && run.violations.is_empty() {
        run.violations.push(format!("{report}"));
    }
    run.violations.extend(unjoined(&world));
    run.members = world.members().len();
    let members = world.member_indices();
    world.take_lookups();
    for &m in &members {
        for _ in 0..4 {
            let key = random_id(world.rng());
            world.lookup(m, key);
        }
    }
    let deadline = world.now().saturating_add(world.node_config().request_timeout * 2);
    while world.lookups_in_flight() > 0 && world.now() < deadline {
        world.run_for(Duration::from_millis(100));
    }
    let outcomes = world.take_lookups();
    run.bad_lookups = outcomes.iter().filter(|o| !o.correct()).count() + world.lookups_in_flight();
    run
}

/// Checks the Zave properties and the link budget, panicking with the seed and report if any is violated.
pub fn assert_safe(world: &World, seed: u64, when: &str) -> Report {
    let view = world.ring_view();
    let mut report = view.zave();
    report.merge(view.link_budget());
    assert!(report.ok(), "seed {seed}: {when}: {report}");
    report
}

/// Whether the report holds every property in `props`.
pub fn holds_all(report: &Report, props: &[Property]) -> bool {
    props.iter().all(|p| report.holds(*p))
}

/// Asserts that no node was ever seen above its link cap, and returns (mean, max) of the nodes' current link
/// counts and the largest cap.
pub fn assert_budget_held(world: &World, seed: u64) -> (f64, usize, usize) {
    assert_eq!(world.world_stats().budget_violations, 0, "seed {seed}: a node exceeded its link cap");
    link_counts(world)
}

/// (mean, max) of alive nodes' link counts (open + opening), and the largest link cap.
pub fn link_counts(world: &World) -> (f64, usize, usize) {
    let counts: Vec<usize> =
        (0..world.len()).filter_map(|i| world.node(i).map(|n| n.inspect().link_count())).collect();
    let caps = (0..world.len()).filter(|i| world.is_alive(*i)).map(|i| world.link_cap(i)).max().unwrap_or(0);
    let mean = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
    (mean, counts.iter().copied().max().unwrap_or(0), caps)
}

/// `OpenLink` outputs per node (mean over every node ever created).
pub fn link_creations_per_node(world: &World) -> f64 {
    let total: u64 = (0..world.len()).map(|i| world.stats(i).link_opens).sum();
    total as f64 / world.len().max(1) as f64
}

/// `log2(n)` as a float.
pub fn log2(n: usize) -> f64 {
    (n.max(1) as f64).log2()
}

/// One line per alive node that is not a member (still joining, or stuck), with its links and last events.
pub fn unjoined(world: &World) -> Vec<String> {
    (0..world.len())
        .filter(|i| world.is_alive(*i) && !world.is_member(*i))
        .map(|i| {
            let links = world.node(i).map_or(0, |n| n.inspect().link_count());
            let bootstrap = world.node(i).map(|n| n.inspect().bootstrap());
            let events: Vec<String> = world.events(i).iter().rev().take(3).map(|(t, e)| format!("{t}: {e:?}")).collect();
            format!(
                "node {i} ({}) alive but not joined: {links} links, {} links ever opened, bootstrap {bootstrap:?}, \
                 last events {events:?}",
                world.id(i).short(),
                world.stats(i).link_opens,
            )
        })
        .collect()
}

/// The environment variable that makes the scenario tests run at the sizes of the brief (slow).
pub const FULL_SIZE_VAR: &str = "CHORDIAL_SIM_FULL";

/// `full` when [`FULL_SIZE_VAR`] is set to anything but `0`, else `reduced`: the scenario tests default
/// to sizes that keep `cargo test` within a few minutes, and state the full sizes next to each use.
pub fn scaled<T>(reduced: T, full: T) -> T {
    match std::env::var(FULL_SIZE_VAR) {
        Ok(v) if !v.is_empty() && v != "0" => full,
        _ => reduced,
    }
}
