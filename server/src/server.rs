//! Assembles a server node: identity, store, node task, HTTP; runs until a shutdown signal.

use std::net::SocketAddr;
use std::time::Duration;

use chordial_core::node::{Config, Node, NodeError};
use rand_core::{OsRng, RngCore};
use tokio::net::TcpListener;

use crate::cli::Cli;
use crate::identity::{self, IdentityError};
use crate::rtc::RtcConfig;
use crate::runtime::{self, NodeHandle};
use crate::store::{OpenError, RedbStore};
use crate::{clock, http};

/// How long a leaving node may take to say goodbye and close its links.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The identity files could not be read or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// The node refused its own delegation.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A flag is inconsistent.
    #[error("{0}")]
    Config(String),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A started server: its HTTP address and node handle.
pub struct Started {
    /// The bound HTTP address.
    pub addr: SocketAddr,
    /// The node.
    pub node: NodeHandle,
    node_task: tokio::task::JoinHandle<()>,
    http_stop: tokio::sync::oneshot::Sender<()>,
    http_task: tokio::task::JoinHandle<()>,
}

/// Starts a server as the command line says.
pub async fn start(cli: &Cli) -> Result<Started, StartError> {
    let rtc_ip = cli.rtc_ip().map_err(StartError::Config)?;
    let now = clock::now();
    let id = identity::load_or_create(&cli.data_dir, &cli.network, now)?;
    let store = RedbStore::open(&cli.data_dir, now)?;
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let config = Config::new(&cli.network, seed);
    let node = Node::new(config, id.session, id.delegation, now)?.with_store(Box::new(store));
    let listener = TcpListener::bind(cli.listen)
        .await
        .map_err(|source| StartError::Listen { addr: cli.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: cli.listen, source })?;
    let rtc = RtcConfig { bind_ip: rtc_ip, ice_servers: cli.ice_servers.clone() };
    let (handle, node_task) = runtime::spawn(node, rtc, cli.bootstrap.clone());
    let (http_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(handle.clone());
    let http_task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "http server failed");
        }
    });
    tracing::info!(%addr, node_id = %handle.node_id, wallet = %handle.wallet, network = %cli.network,
        bootstrap = ?cli.bootstrap, "chordial-server started");
    Ok(Started { addr, node: handle, node_task, http_stop, http_task })
}

impl Started {
    /// Leaves the ring (Leave to neighbours, records handed over), closes every link, stops HTTP. The
    /// store needs no flush: every change was committed when it was made.
    pub async fn stop(self) {
        self.node.shutdown().await;
        if tokio::time::timeout(SHUTDOWN_GRACE, self.node_task).await.is_err() {
            tracing::warn!("node did not finish leaving in time");
        }
        let _ = self.http_stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.http_task).await;
        tracing::info!("stopped");
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
