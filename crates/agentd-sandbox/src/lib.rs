#![doc = include_str!("../README.md")]

mod agent;
mod cgroup;
mod cgroup_fs;
mod copied_tree;
mod egress;
mod egress_proxy;
mod error;
mod fd_passing;
mod fs_access;
mod host_forward;
mod host_probe;
mod host_support;
mod init;
mod init_control;
mod init_probe;
mod instance;
mod launcher_client;
mod launcher_server;
mod line_capture;
mod loopback_bridge;
mod mounts;
mod namespaces;
mod network;
mod output_files;
mod privileges;
mod rlimits;
mod run_pipes;
mod sandbox;
mod seccomp;
mod seccomp_prelude;
mod spec;
mod step;
mod supervise;
mod unsandboxed;

pub use egress::{Egress, EgressSettings, InvalidNetwork, IpNetwork};
pub use error::SandboxError;
pub use host_forward::{ConnectFuture, ForwardStream, ForwardTarget, HostForward, TcpTarget};
pub use init::init_main;
pub use instance::LeftoverReport;
pub use namespaces::{AGENT_ID, HOST_ID_BASE, HOST_ID_COUNT};
pub use sandbox::{Sandbox, SandboxSettings};
pub use spec::{
    BUNDLE_MOUNT, OUTPUTS_MOUNT, OutputFile, OutputLine, RunLimits, RunOutcome, RunSpec, Stream, Termination,
};
pub use unsandboxed::run_unsandboxed;

/// `argv[1]` that makes the agentd binary (or a test binary) act as the sandbox init.
pub const INIT_ARG: &str = "__sandbox-init";
