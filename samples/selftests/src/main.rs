// SPDX-License-Identifier: GPL-2.0

//! kselftest-style tests of intel_vf_vfio_pci, printed as KTAP.
//!
//! Run inside the test VM by `tools/vm/run -- target/release/ivf-selftests`:
//! the runner has created the VFs and bound them to the module.
//!
//! Usage: `ivf-selftests [--list] [NAME-SUBSTRING...]`, or
//! `ivf-selftests --save-stream FILE` to write a stream fixture
//! (`streams/`, see `Documentation/testing.rst`).

mod capability;
mod datapath;
mod dirty;
mod host;
mod hostile;
mod ktap;
mod livemig;
mod migration;
mod pf;
mod skeleton;
mod torture;

use std::process::ExitCode;

use ktap::Test;

/// Whatever the tests did, the kernel must not have complained since boot.
fn kernel_log_clean() -> ktap::Outcome {
    let bad = host::kernel_complaints(0);
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("kernel log:\n{}", bad.join("\n")))
    }
}

/// Every suite, in run order; the kernel log check comes last.
fn all_tests() -> Vec<&'static Test> {
    let mut tests = skeleton::TESTS.to_vec();
    tests.extend_from_slice(migration::TESTS);
    tests.extend_from_slice(datapath::TESTS);
    tests.extend_from_slice(dirty::TESTS);
    tests.extend_from_slice(livemig::TESTS);
    tests.extend_from_slice(capability::TESTS);
    tests.extend_from_slice(hostile::TESTS);
    tests.extend_from_slice(torture::TESTS);
    tests.extend_from_slice(tests![kernel_log_clean]);
    tests
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tests = all_tests();
    if args.first().map(String::as_str) == Some("--save-stream") {
        let Some(path) = args.get(1) else {
            eprintln!("ivf-selftests: --save-stream needs a FILE");
            return ExitCode::from(2);
        };
        return match migration::save_stream_fixture(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ivf-selftests: --save-stream: {err}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "--list") {
        for t in &tests {
            println!("{}", t.name);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Test> = tests
        .into_iter()
        .filter(|t| args.is_empty() || args.iter().any(|a| t.name.contains(a.as_str())))
        .collect();
    if selected.is_empty() {
        eprintln!("ivf-selftests: no test matches {args:?} (see --list)");
        return ExitCode::from(2);
    }
    let (_, failed) = ktap::run_all(&selected);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
