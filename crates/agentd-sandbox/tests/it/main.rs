//! Integration tests of the sandbox: every test starts real sandboxed processes.
//!
//! This binary is also the sandbox's init program (`init_program = current_exe()`), so it
//! has its own `main` (harness = false, `libtest-mimic`): when started as
//! `<exe> __sandbox-init …` it becomes the init before anything else happens.
#![expect(clippy::unwrap_used, reason = "a failing test should panic")]

mod cgroup_v2;
mod egress;
mod host_forward;
mod hostile;
mod isolation;
mod leftovers;
mod lifecycle;
mod outputs;
mod overhead;
mod run_protocol;
mod sockets;
mod support;

use libtest_mimic::{Arguments, Trial};

fn main() {
    if std::env::args().nth(1).as_deref() == Some(agentd_sandbox::INIT_ARG) {
        agentd_sandbox::init_main();
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(leftovers::OWNER_ARG) {
        leftovers::owner_main(&args[2..]);
    }
    let args = Arguments::from_args();
    let tests = [
        run_protocol::tests(),
        isolation::tests(),
        lifecycle::tests(),
        leftovers::tests(),
        hostile::tests(),
        sockets::tests(),
        egress::tests(),
        host_forward::tests(),
        outputs::tests(),
        cgroup_v2::tests(),
    ]
    .into_iter()
    .flatten()
    .map(|(name, test)| {
        Trial::test(name, move || {
            test();
            Ok(())
        })
    })
    .chain([
        Trial::test("spawn_overhead", || {
            overhead::spawn_overhead_p50();
            Ok(())
        })
        .with_ignored_flag(true),
        Trial::test("mount_sources_overhead", || {
            overhead::mount_sources_overhead_p50();
            Ok(())
        })
        .with_ignored_flag(true),
    ])
    .collect();
    libtest_mimic::run(&args, tests).exit();
}

/// A named test body; a failed assertion panics, which libtest-mimic reports as a failure.
pub type Test = (&'static str, fn());
