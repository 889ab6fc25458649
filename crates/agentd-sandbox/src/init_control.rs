//! The control channel between the supervisor and the sandbox init: a `socketpair(2)`
//! carrying length-prefixed JSON frames (u32 little-endian length, then the message).
//!
//! Sequence: supervisor → `Config`; init unshares → `Unshared`; supervisor writes the id
//! maps → `Go`; the sandbox's PID 1 later reports `Outputs` (only when it copies `/outputs`
//! out) and `Exited` (the agent's real wait status), or any process inside reports `Failed`
//! before the program runs. `Kill` (or EOF on the
//! supervisor's side) makes the init kill PID 1, which tears down the whole PID namespace.
//! Writers inside the sandbox never write concurrently (each step follows the previous
//! one), so frames never interleave.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::loopback_bridge::Bridge;
use crate::output_files::Collected;
use crate::rlimits::AgentRlimits;
use crate::seccomp;

/// Frames larger than this are a protocol error, not an allocation.
const MAX_FRAME: u32 = 64 << 20;

/// Everything the init needs to build the sandbox and start the program.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub bundle_dir: PathBuf,
    pub extra_ro_mounts: Vec<(PathBuf, String)>,
    /// Serve the bundle and extra mount directories through overlays, whose mount table
    /// entries name no host path; false where overlayfs is unavailable (plain binds).
    pub hide_mount_sources: bool,
    pub tmp_bytes: u64,
    pub work_bytes: u64,
    /// Host directory (mode 0711) whose empty `root` subdirectory the new root is mounted on.
    pub run_dir: PathBuf,
    /// uid and gid (inside the user namespace) the program runs as.
    pub agent_uid: u32,
    pub agent_gid: u32,
    pub outputs_bytes: u64,
    pub rlimits: AgentRlimits,
    /// Compiled once per `Sandbox`; installed by the agent right before `execve`.
    pub seccomp: Vec<seccomp::Program>,
    /// Apply the landlock ruleset (false when the kernel has no landlock at all).
    pub landlock: bool,
    /// The run cgroup's `tasks` / `cgroup.procs` files: the init writes `0` into each
    /// before anything else, so the whole sandbox lives in the run's cgroup.
    pub cgroup_files: Vec<PathBuf>,
    /// Ports to listen on inside, each carried to a socket in the run dir (egress proxy,
    /// host forward).
    pub bridges: Vec<Bridge>,
    /// Host directory `/outputs` is copied into when the agent ends by itself.
    pub collect_outputs: Option<PathBuf>,
}

/// Supervisor → init.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToInit {
    Config(Box<InitConfig>),
    /// The id maps are written; continue.
    Go,
    /// Kill the sandbox now.
    Kill,
}

/// Init (or PID 1, or the agent before exec) → supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromInit {
    /// New namespaces exist; the supervisor may write `/proc/<init>/{uid,gid}_map`.
    Unshared,
    /// A setup step failed; the program did not run.
    Failed { stage: String, message: String },
    /// What was copied out of `/outputs` (sent right before `Exited`).
    Outputs(Collected),
    /// The program ended with this status.
    Exited(AgentStatus),
}

/// The program's wait status as PID 1 saw it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum AgentStatus {
    Code(i32),
    Signal(i32),
}

fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or_else(|| io::Error::other("control frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn frame_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(header);
    if len > MAX_FRAME {
        return Err(io::Error::other("control frame too large"));
    }
    Ok(len as usize)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(io::Error::other)
}

/// Blocking write of one frame (inside the sandbox: single-threaded, no runtime).
pub(crate) fn write_frame<T: Serialize>(mut out: impl Write, msg: &T) -> io::Result<()> {
    out.write_all(&encode(msg)?)
}

/// Blocking read of one frame; `None` on a clean EOF before a frame starts.
pub(crate) fn read_frame<T: for<'de> Deserialize<'de>>(mut input: impl Read) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(header)?];
    input.read_exact(&mut body)?;
    decode(&body).map(Some)
}

/// Async write of one frame (supervisor side).
pub(crate) async fn send<T: Serialize>(out: &mut (impl AsyncWrite + Unpin), msg: &T) -> io::Result<()> {
    out.write_all(&encode(msg)?).await
}

/// Async read of one frame; `None` on a clean EOF before a frame starts.
pub(crate) async fn recv<T: for<'de> Deserialize<'de>>(input: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match input.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(header)?];
    input.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_eof_reads_as_none() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &FromInit::Exited(AgentStatus::Signal(9))).unwrap();
        write_frame(&mut buf, &FromInit::Unshared).unwrap();
        let mut input = &buf[..];
        let first: Option<FromInit> = read_frame(&mut input).unwrap();
        assert!(matches!(first, Some(FromInit::Exited(AgentStatus::Signal(9)))));
        let second: Option<FromInit> = read_frame(&mut input).unwrap();
        assert!(matches!(second, Some(FromInit::Unshared)));
        let end: Option<FromInit> = read_frame(&mut input).unwrap();
        assert!(end.is_none());
    }
}
