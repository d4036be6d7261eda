//! The command line (clap).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A Chordial server node: an always-on member of the Chord ring and an HTTP door into it for browsers.
///
/// It keeps its identity (wallet and session keys, mode 0600) and a durable store of records and
/// mailboxes in --data-dir, serves POST /v1/signal (WebRTC bootstrap), GET /v1/status, GET /metrics and
/// GET /healthz on --listen, and leaves the ring gracefully on SIGINT/SIGTERM. Logs go to stderr
/// (RUST_LOG sets the level, e.g. RUST_LOG=chordial_server=debug).
#[derive(Debug, Parser)]
#[command(name = "chordial-server", version)]
pub struct Cli {
    /// HTTP address to listen on (port 0 picks a free port; the chosen address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7700", value_name = "ADDR")]
    pub listen: SocketAddr,

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
        ])
        .unwrap();
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
        let wildcard = parse(&["--listen", "0.0.0.0:7700"]).unwrap();
        assert!(wildcard.rtc_ip().unwrap_err().contains("--rtc-ip"));
    }
}
