//! The command line (clap).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::limit::Rate;

/// A Chordial server node: an always-on member of the Chord ring and an HTTP door into it for browsers.
///
/// It keeps its identity (wallet and session keys, mode 0600) and a durable store of records and
/// mailboxes in --data-dir, serves POST /v1/signal (WebRTC bootstrap, rate-limited per client address
/// and per wallet), a minimal GET /v1/status and GET /healthz on --listen, the full GET /v1/status and
/// GET /metrics only on --admin-listen, and leaves the ring gracefully on SIGINT/SIGTERM. Logs go to
/// stderr (RUST_LOG sets the level, e.g. RUST_LOG=chordial_server=debug).
#[derive(Debug, Parser)]
#[command(name = "chordial-server", version)]
pub struct Cli {
    /// HTTP address to listen on (port 0 picks a free port; the chosen address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7700", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Admin HTTP address for the full GET /v1/status (links, peers, traffic) and GET /metrics; off by
    /// default. Keep it private (loopback or an operator network): it maps who talks to this node.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// POST /v1/signal requests one client address (IPv4, or an IPv6 /64) may make at once.
    #[arg(long, default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub signal_address_burst: u32,

    /// POST /v1/signal requests a client address earns back per minute.
    #[arg(long, default_value_t = 120, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub signal_address_per_minute: u32,

    /// Bootstrap offers one wallet may make at once (counted once the offer's delegation verified).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub signal_wallet_burst: u32,

    /// Bootstrap offers a wallet earns back per minute.
    #[arg(long, default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub signal_wallet_per_minute: u32,

    /// Client addresses, and separately wallets, the /v1/signal limits remember (the least recently seen
    /// is forgotten first; about 150 bytes each).
    #[arg(long, default_value_t = 16_384, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub signal_limit_table: u64,

    /// Bytes of records this server holds at most (presence, topics, mailboxes, as the core counts them);
    /// a write beyond it is refused with `Full`, and nothing stored is evicted to make room.
    #[arg(long, default_value_t = chordial_core::node::records::SERVER_STORE_BYTES as u64, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(65_536..))]
    pub store_bytes: u64,

    /// Directory for the identity key, the self-delegation and the record store (created if missing).
    #[arg(long, default_value = "chordial-data", value_name = "DIR", global = true)]
    pub data_dir: PathBuf,

    /// Join the ring through this server's /v1/signal (http://host:port); repeat for fallbacks. Without
    /// it the server founds a ring of its own.
    #[arg(long, value_name = "URL", value_parser = parse_bootstrap)]
    pub bootstrap: Vec<String>,

    /// A STUN or TURN server URL for ICE (e.g. stun:stun.example.org:3478); repeatable. None by default:
    /// a server with a public address needs none.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,

    /// The network id: bound into every delegation and message; nodes of other networks are refused.
    #[arg(long, default_value = "chordial-dev", value_name = "ID", global = true)]
    pub network: String,

    /// The local address WebRTC binds its UDP sockets to [default: the --listen address]. Must be a
    /// concrete address (a wildcard would skip loopback).
    #[arg(long, value_name = "IP")]
    pub rtc_ip: Option<IpAddr>,

    /// Write logs as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,

    /// Subcommand (default: run the node).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print this server's wallet address (line 1) and node id (line 2), creating the identity on first
    /// use.
    Identity,
}

impl Cli {
    /// The per-address limit on /v1/signal.
    pub fn address_rate(&self) -> Rate {
        Rate { burst: self.signal_address_burst, per_minute: self.signal_address_per_minute }
    }

    /// The per-wallet limit on /v1/signal.
    pub fn wallet_rate(&self) -> Rate {
        Rate { burst: self.signal_wallet_burst, per_minute: self.signal_wallet_per_minute }
    }

    /// The address WebRTC binds: --rtc-ip, else the --listen address if it is concrete.
    pub fn rtc_ip(&self) -> Result<IpAddr, String> {
        let ip = self.rtc_ip.unwrap_or(self.listen.ip());
        if ip.is_unspecified() {
            return Err(format!(
                "--listen {} is a wildcard: give --rtc-ip with a concrete address",
                self.listen
            ));
        }
        Ok(ip)
    }
}

fn parse_bootstrap(s: &str) -> Result<String, String> {
    crate::signal_client::signal_uri(s).map_err(|e| e.to_string())?;
    Ok(s.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chordial-server").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.listen, "127.0.0.1:7700".parse::<SocketAddr>().unwrap());
        assert_eq!(cli.data_dir, PathBuf::from("chordial-data"));
        assert!(cli.bootstrap.is_empty() && cli.ice_servers.is_empty());
        assert_eq!(cli.network, "chordial-dev");
        assert_eq!(cli.rtc_ip().unwrap(), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(cli.command.is_none());
        assert!(cli.admin_listen.is_none());
        assert_eq!(cli.store_bytes as usize, chordial_core::node::records::SERVER_STORE_BYTES);
        assert_eq!(parse(&["--store-bytes", "1048576"]).unwrap().store_bytes, 1 << 20);
        assert!(
            parse(&["--store-bytes", "1000"]).is_err(),
            "a budget too small to hold one record is refused"
        );
        assert_eq!(cli.address_rate(), crate::http::DEFAULT_ADDRESS_RATE);
        assert_eq!(cli.wallet_rate(), crate::runtime::DEFAULT_WALLET_RATE);
        assert_eq!(cli.signal_limit_table as usize, crate::http::DEFAULT_LIMIT_TABLE);
    }

    #[test]
    fn every_flag() {
        let cli = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--bootstrap",
            "http://127.0.0.1:1/",
            "--bootstrap",
            "http://127.0.0.1:2",
            "--ice-server",
            "stun:127.0.0.1:3478",
            "--network",
            "n",
            "--admin-listen",
            "127.0.0.1:9",
            "--signal-address-burst",
            "5",
            "--signal-address-per-minute",
            "7",
            "--signal-wallet-burst",
            "2",
            "--signal-wallet-per-minute",
            "3",
            "--signal-limit-table",
            "100",
        ])
        .unwrap();
        assert_eq!(cli.admin_listen, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(cli.address_rate(), Rate { burst: 5, per_minute: 7 });
        assert_eq!(cli.wallet_rate(), Rate { burst: 2, per_minute: 3 });
        assert_eq!(cli.signal_limit_table, 100);
        assert_eq!(cli.bootstrap, vec!["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        assert_eq!(cli.ice_servers, vec!["stun:127.0.0.1:3478"]);
        assert_eq!(cli.network, "n");
        assert_eq!(cli.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn identity_subcommand_takes_global_flags() {
        let cli = parse(&["identity", "--data-dir", "/tmp/y"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Identity)));
        assert_eq!(cli.data_dir, PathBuf::from("/tmp/y"));
    }

    #[test]
    fn bad_input_is_refused_with_a_message() {
        let err = parse(&["--bootstrap", "ftp://x"]).unwrap_err().to_string();
        assert!(err.contains("only http://"), "{err}");
        assert!(parse(&["--listen", "nonsense"]).is_err());
        assert!(parse(&["--signal-address-burst", "0"]).is_err(), "a limit of zero would refuse everyone");
        assert!(parse(&["--signal-wallet-per-minute", "many"]).is_err());
        assert!(parse(&["--admin-listen", "nope"]).is_err());
        let wildcard = parse(&["--listen", "0.0.0.0:7700"]).unwrap();
        assert!(wildcard.rtc_ip().unwrap_err().contains("--rtc-ip"));
    }
}
