//! Assembles a server node: identity, store, node task, HTTP; runs until a shutdown signal.

use std::net::SocketAddr;
use std::time::Duration;

use chordial_core::node::{Config, Node, NodeError};
use rand_core::{OsRng, RngCore};
use tokio::net::TcpListener;

use crate::cli::Cli;
use crate::identity::{self, IdentityError};
use crate::rtc::RtcConfig;
use crate::runtime::{self, NodeHandle, Options};
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

/// A started server: its HTTP addresses and node handle.
pub struct Started {
    /// The bound HTTP address.
    pub addr: SocketAddr,
    /// The bound admin address, if any.
    pub admin_addr: Option<SocketAddr>,
    /// The node.
    pub node: NodeHandle,
    node_task: tokio::task::JoinHandle<()>,
    http_stop: tokio::sync::watch::Sender<bool>,
    http_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Binds `addr`.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
    let bound = listener.local_addr().map_err(|source| StartError::Listen { addr, source })?;
    Ok((listener, bound))
}

/// Serves `app` on `listener` (with each client's address, for the rate limits) until `stop` turns true.
fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, service).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "http server failed");
        }
    })
}

/// Starts a server as the command line says.
pub async fn start(cli: &Cli) -> Result<Started, StartError> {
    let rtc_ip = cli.rtc_ip().map_err(StartError::Config)?;
    let now = clock::now();
    let id = identity::load_or_create(&cli.data_dir, &cli.network, now)?;
    let mut store = RedbStore::open(&cli.data_dir, now)?;
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let mut config = Config::new(&cli.network, seed);
    config.store_bytes = usize::try_from(cli.store_bytes).unwrap_or(usize::MAX);
    let writer = store.writer();
    let accepted = store.accepted();
    let mut node = Node::new(config, id.session, id.delegation, now)?.with_store(Box::new(store));
    let unreadable = node.with_accepted_store(now, Box::new(accepted));
    if unreadable > 0 {
        tracing::warn!(
            unreadable,
            "accepted-message rows unreadable: nothing dated before now is accepted from their senders"
        );
    }
    let (listener, addr) = bind(cli.listen).await?;
    let admin = match cli.admin_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let rtc = RtcConfig { bind_ip: rtc_ip, ice_servers: cli.ice_servers.clone() };
    let mut options = Options::new(rtc, cli.bootstrap.clone());
    options.wallet_rate = cli.wallet_rate();
    options.wallet_table = cli.signal_limit_table as usize;
    options.store = Some(writer);
    let (handle, node_task) = runtime::spawn_with(node, options);
    let (http_stop, stop_rx) = tokio::sync::watch::channel(false);
    let table = cli.signal_limit_table as usize;
    let mut http_tasks =
        vec![serve(listener, http::router(handle.clone(), cli.address_rate(), table), stop_rx.clone())];
    let admin_addr = admin.map(|(listener, a)| {
        http_tasks.push(serve(listener, http::admin_router(handle.clone()), stop_rx));
        a
    });
    tracing::info!(%addr, ?admin_addr, node_id = %handle.node_id, wallet = %handle.wallet, network = %cli.network,
        bootstrap = ?cli.bootstrap, "chordial-server started");
    Ok(Started { addr, admin_addr, node: handle, node_task, http_stop, http_tasks })
}

impl Started {
    /// Leaves the ring (Leave to neighbours, records handed over), closes every link, stops HTTP. The
    /// store needs no flush: the node task commits before every drain of outputs, the last one included.
    pub async fn stop(self) {
        self.node.shutdown().await;
        if tokio::time::timeout(SHUTDOWN_GRACE, self.node_task).await.is_err() {
            tracing::warn!("node did not finish leaving in time");
        }
        let _ = self.http_stop.send(true);
        for task in self.http_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
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
