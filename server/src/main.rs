//! `chordial-server`: see `chordial-server --help` and `docs/server.md`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use chordial_server::cli::{Cli, Command};
use chordial_server::{clock, identity, server};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        Some(Command::Identity) => {
            match identity::load_or_create(&cli.data_dir, &cli.network, clock::now()) {
                Ok(id) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}\n{}", id.wallet.address().to_checksum(), id.session.node_id());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("chordial-server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => run(cli),
    }
}

fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chordial-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let started = match server::start(&cli).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("chordial-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        // One machine-readable line on stdout: how to reach this node (tests and scripts read it).
        {
            let mut out = std::io::stdout().lock();
            let admin = started.admin_addr.map(|a| format!(" admin http://{a}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "listening http://{} node {} wallet {}{admin}",
                started.addr, started.node.node_id, started.node.wallet
            );
            let _ = out.flush();
        }
        if let Some(admin) = started.admin_addr {
            tracing::info!(%admin, "admin listener (full status, metrics)");
        }
        tokio::select! {
            _ = server::shutdown_signal() => {}
            _ = started.node.stopped() => {
                // Only a failed store commit ends the node task by itself (see runtime.rs).
                eprintln!("chordial-server: the node stopped (store commit failed; see the log)");
                return ExitCode::FAILURE;
            }
        }
        tracing::info!("shutdown signal: leaving the ring");
        started.stop().await;
        ExitCode::SUCCESS
    })
}
