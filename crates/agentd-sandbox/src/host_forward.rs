//! The host side of a run's host forward: one service of the host (the platform's API, for
//! the worker) that a run reaches on a fixed port of its own loopback, whatever its egress
//! says. The run's bridge (`loopback_bridge.rs`) carries each connection to the Unix socket
//! `forward.sock` in the run's scratch dir; the supervisor serves it, for this run only, as
//! part of the `run` future, and carries each connection on, byte for byte, to what the
//! spec's [`ForwardTarget`] opens: a TCP address ([`TcpTarget`]) or anything the owner
//! builds on it (a TLS connection, say). Nothing is parsed or filtered here: the target is
//! the operator's choice, not the agent's, and whatever answers there must authenticate
//! what it is sent.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::SandboxError;
use crate::loopback_bridge::{Bridge, MAX_CONNECTIONS, bind_host_socket};
use crate::namespaces::IdMapping;

/// The forward socket's name in the run's scratch dir.
const SOCKET_NAME: &str = "forward.sock";
/// How long opening one connection to the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A service of the host that the run reaches at `127.0.0.1:<port>` inside.
#[derive(Debug, Clone)]
pub struct HostForward {
    /// The port on the run's own loopback (not 0, not the egress proxy's 3128).
    pub port: u16,
    /// Where each connection goes on the host.
    pub target: Arc<dyn ForwardTarget>,
}

/// Opens, on the host, the other end of one connection a run made to its forward port.
pub trait ForwardTarget: fmt::Debug + Send + Sync {
    fn connect(&self) -> ConnectFuture<'_>;
}

/// What [`ForwardTarget::connect`] returns.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Box<dyn ForwardStream>>> + Send + 'a>>;

/// A connection to a forward's target: any byte stream.
pub trait ForwardStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ForwardStream for T {}

/// A plain TCP service at `host:port` (a name is resolved at each connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpTarget {
    pub host: String,
    pub port: u16,
}

impl ForwardTarget for TcpTarget {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn ForwardStream>)
        })
    }
}

/// One run's forward: its socket, bound in the run dir, and where it leads.
pub(crate) struct RunForward {
    listener: UnixListener,
    forward: HostForward,
}

impl RunForward {
    /// Binds the forward socket in `run_dir`, where the run's bridge finds it, usable by
    /// the sandbox's root only (the bridge's host uid).
    pub(crate) fn open(run_dir: &Path, mapping: IdMapping, forward: HostForward) -> Result<RunForward, SandboxError> {
        let listener = bind_host_socket(run_dir, SOCKET_NAME, mapping, "host forward")?;
        Ok(RunForward { listener, forward })
    }

    /// The bridge that carries the run's forward port to this socket.
    pub(crate) fn bridge(&self) -> Bridge {
        Bridge { port: self.forward.port, socket: SOCKET_NAME.to_owned() }
    }

    /// Serves until dropped; dropping it closes every connection it carries.
    pub(crate) async fn serve(self) -> Infallible {
        let RunForward { listener, forward } = self;
        let target = forward.target;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        loop {
            // Reap finished connections so the set does not grow over a long run.
            while connections.try_join_next().is_some() {}
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return std::future::pending().await; // the semaphore is never closed
            };
            match listener.accept().await {
                Ok((client, _)) => {
                    let target = target.clone();
                    connections.spawn(async move {
                        carry(client, target.as_ref()).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // EMFILE and the like: back off briefly instead of spinning on the error.
                    tracing::warn!(error = %e, "host forward cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Carries one connection to the target; a target that cannot be reached closes it.
async fn carry(mut client: UnixStream, target: &dyn ForwardTarget) {
    let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, target.connect()).await {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, ?target, "a run's host forward could not reach its target");
            return;
        }
        Err(_) => {
            tracing::warn!(?target, "a run's host forward timed out connecting to its target");
            return;
        }
    };
    // Either side closing or failing ends the connection; nothing more to report.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
