//! `chordial-sim`: the DHT benchmark and a reproducer for random fault schedules.
//!
//! ```text
//! chordial-sim bench [--sizes 1024,4096,16384] [--big] [--warm] [--seed S] [--lookups K] [--messages M] [--churn-secs T] [--crypto real|fast] [--json FILE]
//! chordial-sim faults --seed N [--count K]
//! ```
//!
//! `bench` measures, per network size N: lookup hops (mean, p99) against `0.5·log2 N`, the convergence time
//! of a mass join, control messages per node per second at steady state, links per node against the cap,
//! link creations per node-hour and lookup success under churn, and the simulator's own speed (simulated
//! node-seconds per wall-clock second). `--big` adds N = 65,536. `--warm` builds each ring converged
//! ([`World::add_warm_ring`]) instead of joining it node by node, for the largest sizes; the convergence
//! columns then only confirm that the ring built is exact. `faults` replays seeds of the
//! `randomized_fault_schedules` test and prints what happened.
// A command-line tool: printing is its job, and it measures its own wall-clock time (never the protocol's).
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use chordial_core::crypto::CryptoRef;
use chordial_sim::crypto;
use chordial_sim::messages::{MessageStats, MessageTracker};
use chordial_sim::metrics::LookupStats;
use chordial_sim::scenario::{
    build_base, grow_in_waves, link_counts, log2, lookup_batch, random_fault_run, run_churn, run_until_exact,
    ChurnConfig, FaultPlan,
};
use chordial_sim::{World, WorldConfig};

/// One row of the benchmark (one network size).
#[derive(Debug, Serialize)]
struct BenchRow {
    n: usize,
    seed: u64,
    /// The crypto provider of the run (`real` or `fast`); no decision may depend on it.
    crypto: &'static str,
    /// The ring was built converged (`--warm`) rather than joined node by node.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    warm: bool,
    /// `0.5 · log2 N`, the hop count Chord promises on average.
    half_log2_n: f64,
    /// Lookups on the converged ring.
    lookups: LookupStats,
    /// Virtual seconds from the first joiner to an exactly right ring (`None`: not within the limit).
    convergence_s: Option<f64>,
    /// Virtual seconds from the last joiner to an exactly right ring.
    convergence_after_last_join_s: Option<f64>,
    /// `Transmit`s per node per second over a quiet minute after convergence.
    control_msgs_per_node_s: f64,
    /// Bytes per node per second over the same minute.
    control_bytes_per_node_s: f64,
    /// Mean links (open + opening) per node at steady state.
    links_mean: f64,
    /// Most links of any node at steady state.
    links_max: usize,
    /// Most links any node ever had during the run.
    links_max_ever: usize,
    /// The configured cap.
    link_cap: usize,
    /// Churn: link creations per node-hour.
    churn_link_creations_per_node_hour: f64,
    /// Churn: share of lookups that returned the true owner when answered.
    churn_lookup_success: f64,
    /// Churn: the full report.
    churn: chordial_sim::scenario::ChurnReport,
    /// Messages between random online wallets on the converged ring.
    messages: MessageStats,
    /// Frames per delivered message of those: the routed frames of the sends (`Get`, `Records`,
    /// `Deliver`, `Receipt`; each link a frame crosses counts; nothing else sends those kinds meanwhile)
    /// and the `Ack` frames sent meanwhile beyond the quiet minute's rate, over the messages delivered.
    /// (Until acknowledgements were numbered and rode on routed frames, each crossing drew one `Ack`, and
    /// this counted the routed frames twice.)
    message_frames_per_delivered: f64,
    /// Churn: share of messages (whose sender lived) that were delivered or stored.
    churn_delivered_or_stored: f64,
    /// Bytes per node per second of presence upkeep (presence `Store`s and their acks, record replication)
    /// over the quiet minute.
    presence_upkeep_bytes_per_node_s: f64,
    /// Link offers sent through the ring over the whole run, by the nodes alive at its end, and how many
    /// of them first asked the target for its session key (one round trip more: `node::keys`).
    ring_offers: u64,
    /// See `ring_offers`.
    key_requests: u64,
    /// Frames and bytes by message kind over the quiet minute.
    quiet_minute_by_kind: std::collections::BTreeMap<&'static str, (u64, u64)>,
    /// Simulated node-seconds per wall-clock second over the whole run.
    sim_node_seconds_per_wall_second: f64,
    /// Wall-clock seconds for the whole run.
    wall_s: f64,
}

struct BenchArgs {
    sizes: Vec<usize>,
    seed: u64,
    lookups: usize,
    messages: usize,
    churn_secs: u64,
    crypto: CryptoRef,
    json: Option<String>,
    warm: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => match parse_bench(&args[1..]) {
            Ok(b) => bench(&b),
            Err(e) => usage(&e),
        },
        Some("faults") => faults(&args[1..]),
        _ => usage("expected a command"),
    }
}

fn usage(error: &str) -> ExitCode {
    eprintln!("error: {error}");
    eprintln!("usage: chordial-sim bench [--sizes 1024,4096,16384] [--big] [--warm] [--seed S] [--lookups K] [--messages M] [--churn-secs T] [--crypto real|fast] [--json FILE]");
    eprintln!("       chordial-sim faults --seed N [--count K]");
    ExitCode::from(2)
}

fn parse_bench(args: &[String]) -> Result<BenchArgs, String> {
    let mut b = BenchArgs {
        sizes: vec![1024, 4096, 16384],
        seed: 1,
        lookups: 10_000,
        messages: 1_000,
        churn_secs: 300,
        crypto: &chordial_core::crypto::REAL,
        json: None,
        warm: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sizes" => {
                b.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|_| format!("bad size {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--big" => b.sizes.push(65_536),
            "--warm" => b.warm = true,
            "--seed" => b.seed = value()?.parse().map_err(|_| "bad seed")?,
            "--lookups" => b.lookups = value()?.parse().map_err(|_| "bad lookup count")?,
            "--messages" => b.messages = value()?.parse().map_err(|_| "bad message count")?,
            "--churn-secs" => b.churn_secs = value()?.parse().map_err(|_| "bad churn time")?,
            "--json" => b.json = Some(value()?),
            "--crypto" => {
                let name = value()?;
                b.crypto = crypto::by_name(&name)
                    .ok_or_else(|| format!("--crypto takes fast or real, not {name}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(b)
}

fn bench(args: &BenchArgs) -> ExitCode {
    let mut rows = Vec::new();
    println!(
        "{:>7} {:>6} {:>5} {:>6} {:>8} {:>8} {:>9} {:>14} {:>10} {:>8} {:>10} {:>8}",
        "N",
        "hops",
        "p99",
        "½log2N",
        "exact%",
        "conv s",
        "msg/n/s",
        "links mean/max",
        "cap",
        "cr/n·h",
        "churn ok%",
        "nsec/s"
    );
    for &n in &args.sizes {
        let row = bench_one(n, args);
        println!(
            "{:>7} {:>6.2} {:>5.0} {:>6.2} {:>8.2} {:>8} {:>9.2} {:>9.1}/{:<4} {:>10} {:>8.1} {:>10.2} {:>8.0}",
            row.n,
            row.lookups.hops.mean,
            row.lookups.hops.p99,
            row.half_log2_n,
            100.0 * row.lookups.success_rate(),
            row.convergence_s.map_or("-".to_owned(), |s| format!("{s:.0}")),
            row.control_msgs_per_node_s,
            row.links_mean,
            row.links_max,
            row.link_cap,
            row.churn_link_creations_per_node_hour,
            100.0 * row.churn_lookup_success,
            row.sim_node_seconds_per_wall_second,
        );
        rows.push(row);
        if let Some(path) = &args.json {
            // Written after every size, so a long run leaves its finished rows behind.
            match serde_json::to_string_pretty(&rows) {
                Ok(text) => {
                    if let Err(e) = std::fs::write(path, text) {
                        eprintln!("cannot write {path}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                Err(e) => {
                    eprintln!("cannot encode results: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!();
    println!(
        "{:>7} {:>9} {:>8} {:>9} {:>9} {:>10} {:>10} {:>12} {:>12}",
        "N", "msg ok%", "links", "p99", "ms p50", "ms p99", "rcpt p50", "churn d+s%", "upkeep B/n/s"
    );
    for row in &rows {
        let m = &row.messages;
        println!(
            "{:>7} {:>9.2} {:>8.2} {:>9.0} {:>9.0} {:>10.0} {:>10.0} {:>12.2} {:>12.1}",
            row.n,
            100.0 * m.delivered as f64 / m.sent.max(1) as f64,
            m.hops.mean,
            m.hops.p99,
            m.latency_ms.p50,
            m.latency_ms.p99,
            m.receipt_ms.p50,
            100.0 * row.churn_delivered_or_stored,
            row.presence_upkeep_bytes_per_node_s,
        );
    }
    ExitCode::SUCCESS
}

fn bench_one(n: usize, args: &BenchArgs) -> BenchRow {
    let wall = Instant::now();
    let seed = args.seed;
    let mut world = World::new(WorldConfig { crypto: args.crypto, ..WorldConfig::new(seed) });
    let base_size = world.r() + 1;
    let (base, join_start) = if args.warm {
        // The ring built converged; the servers are r + 1 of its nodes. Convergence below only checks it.
        let (_, servers) = world.add_warm_ring(n, base_size);
        eprintln!("N={n}: warm ring built ({:.0} s wall so far)", wall.elapsed().as_secs_f64());
        (servers, world.now())
    } else {
        let base =
            build_base(&mut world, base_size, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
        // Mass join, in waves that at most double the membership (see `grow_in_waves`).
        let join_start = world.now();
        grow_in_waves(&mut world, n, Duration::from_secs(20), Duration::from_secs(5));
        (base, join_start)
    };
    let last_join = world.now();
    let limit = Duration::from_secs(600 + n as u64 / 10);
    let converged = run_until_exact(&mut world, limit, Duration::from_secs(1));
    let convergence_s = converged.map(|_| world.now().since(join_start).as_secs_f64());
    let convergence_after_last_join_s = converged.map(|_| world.now().since(last_join).as_secs_f64());
    eprintln!(
        "N={n}: converged {convergence_s:?} s after the first join ({:.0} s wall so far)",
        wall.elapsed().as_secs_f64()
    );

    // Steady state: let the finger sweeps finish, then count control traffic over a quiet minute.
    world.run_for(Duration::from_secs(60));
    let alive: Vec<usize> = (0..world.len()).filter(|i| world.is_alive(*i)).collect();
    let tx = |w: &World| {
        alive
            .iter()
            .map(|i| (w.stats(*i).transmits, w.stats(*i).tx_bytes))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let before = tx(&world);
    let window = Duration::from_secs(60);
    world.count_kinds(true);
    world.run_for(window);
    let by_kind = world.count_kinds(false);
    let after = tx(&world);
    let per = alive.len() as f64 * window.as_secs_f64();
    let upkeep: u64 = ["Store", "StoreAck", "Replicate"]
        .iter()
        .filter_map(|k| by_kind.get(k))
        .map(|(_, bytes)| bytes)
        .sum();
    let (links_mean, links_max, link_cap) = link_counts(&world);

    let lookups = lookup_batch(&mut world, args.lookups, Duration::from_millis(2), Duration::from_secs(30));
    eprintln!("N={n}: lookups {:?} ({:.0} s wall so far)", lookups.hops, wall.elapsed().as_secs_f64());

    let mut tracker = MessageTracker::new();
    let members = world.member_indices();
    world.count_kinds(true);
    let started = world.now();
    while tracker.len() < args.messages {
        let from = members[chordial_sim::scenario::pick(world.rng(), members.len())];
        let to = members[chordial_sim::scenario::pick(world.rng(), members.len())];
        if from != to {
            tracker.send(&mut world, from, to);
        }
        world.run_for(Duration::from_millis(5));
    }
    tracker.wait(&mut world, Duration::from_secs(60));
    let message_kinds = world.count_kinds(false);
    let messages = tracker.judge(&world);
    let routed: u64 = ["Get", "Records", "Deliver", "Receipt"]
        .iter()
        .filter_map(|k| message_kinds.get(k))
        .map(|(frames, _)| frames)
        .sum();
    let acks = |kinds: &std::collections::BTreeMap<&'static str, (u64, u64)>| {
        kinds.get("Ack").map_or(0.0, |(frames, _)| *frames as f64)
    };
    let phase = world.now().since(started).as_secs_f64();
    let background_acks = acks(&by_kind) / window.as_secs_f64() * phase;
    let message_acks = (acks(&message_kinds) - background_acks).max(0.0);
    let message_frames_per_delivered = (routed as f64 + message_acks) / messages.delivered.max(1) as f64;
    eprintln!(
        "N={n}: messages {messages:?}, {message_frames_per_delivered:.1} frames per delivered message \
         ({:.0} s wall so far)",
        wall.elapsed().as_secs_f64()
    );

    let churn = ChurnConfig {
        rate: 1.0,
        join_probability: 0.5,
        restart_probability: 0.5,
        lookups_per_sec: 20.0,
        messages_per_sec: 5.0,
        protected: base.clone(),
        via: base.clone(),
    };
    let churn = run_churn(&mut world, &churn, Duration::from_secs(args.churn_secs));
    let links_max_ever = (0..world.len()).map(|i| world.stats(i).max_links).max().unwrap_or(0);
    let (ring_offers, key_requests) = (0..world.len())
        .filter_map(|i| world.node(i))
        .map(|node| (node.inspect().counters().ring_offers, node.inspect().counters().key_requests))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let wall_s = wall.elapsed().as_secs_f64();
    BenchRow {
        n,
        seed,
        crypto: args.crypto.name(),
        warm: args.warm,
        half_log2_n: 0.5 * log2(n),
        lookups,
        convergence_s,
        convergence_after_last_join_s,
        control_msgs_per_node_s: (after.0 - before.0) as f64 / per,
        control_bytes_per_node_s: (after.1 - before.1) as f64 / per,
        links_mean,
        links_max,
        links_max_ever,
        link_cap,
        churn_link_creations_per_node_hour: churn.link_creations_per_node_hour,
        churn_lookup_success: churn.lookups.success_rate(),
        messages,
        message_frames_per_delivered,
        churn_delivered_or_stored: churn.messages.delivered_or_stored(),
        presence_upkeep_bytes_per_node_s: upkeep as f64 / per,
        ring_offers,
        key_requests,
        quiet_minute_by_kind: by_kind,
        churn,
        sim_node_seconds_per_wall_second: world.world_stats().node_ms as f64 / 1000.0 / wall_s.max(1e-9),
        wall_s,
    }
}

fn faults(args: &[String]) -> ExitCode {
    let mut seed = None;
    let mut count = 1u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--seed", Some(v)) => seed = Some(v),
            ("--count", Some(v)) => count = v,
            _ => return usage(&format!("bad option {a}")),
        }
    }
    let Some(seed) = seed else { return usage("faults needs --seed") };
    let mut failed = 0;
    for s in seed..seed + count {
        let run = random_fault_run(s, &FaultPlan::default(), |_| {});
        println!("seed {s}: {}", if run.passed() { "ok" } else { "FAILED" });
        if !run.passed() || count == 1 {
            println!("{run:#?}");
        }
        failed += u64::from(!run.passed());
    }
    if failed > 0 {
        println!("{failed} of {count} seeds failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
