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
mod pf_verdict;
mod skeleton;
// The tests' stream builder (rust/common/tests/support/).
#[path = "../../../rust/common/tests/support/stream.rs"]
mod stream_build;
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

/// Whatever the tests did, kmemleak finds no object lost by the module,
/// vfio or iommufd. Only on a kernel with kmemleak (the KASAN one of `make
/// check-kasan`); its scans run here, not on a timer, so this is the one
/// verdict on leaks. Two scans, after a wait: kmemleak does not report an
/// object younger than 5 s.
fn kmemleak_clean() -> ktap::Outcome {
    const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
    if !std::path::Path::new(KMEMLEAK).exists() {
        let _ = host::sh("mount", &["-t", "debugfs", "none", "/sys/kernel/debug"]);
    }
    if !std::path::Path::new(KMEMLEAK).exists() {
        return ktap::skip(
            "this kernel has no kmemleak (CONFIG_DEBUG_KMEMLEAK): `make check-kasan` runs it",
        );
    }
    std::thread::sleep(std::time::Duration::from_secs(6));
    for _ in 0..2 {
        ktap::s(std::fs::write(KMEMLEAK, "scan"))?;
    }
    let report = ktap::s(std::fs::read_to_string(KMEMLEAK))?;
    let objects: Vec<&str> = report.split("unreferenced object").skip(1).collect();
    let ours: Vec<&str> = objects
        .iter()
        .copied()
        .filter(|o| {
            ["intel_vf_vfio_pci", "vfio", "iommufd", "ivf_"]
                .iter()
                .any(|m| o.contains(m))
        })
        .collect();
    println!(
        "# kmemleak_clean: {} unreferenced objects in all, {} from the module, vfio or iommufd",
        objects.len(),
        ours.len()
    );
    if ours.is_empty() {
        Ok(())
    } else {
        Err(format!("kmemleak:\n{}", ours.join("\n")))
    }
}

/// Every suite, in run order; the kernel log check comes last, then the
/// leak check (its scans write to the kernel log).
fn all_tests() -> Vec<&'static Test> {
    let mut tests = skeleton::TESTS.to_vec();
    tests.extend_from_slice(migration::TESTS);
    tests.extend_from_slice(datapath::TESTS);
    tests.extend_from_slice(dirty::TESTS);
    tests.extend_from_slice(livemig::TESTS);
    tests.extend_from_slice(capability::TESTS);
    tests.extend_from_slice(hostile::TESTS);
    tests.extend_from_slice(pf_verdict::TESTS);
    tests.extend_from_slice(torture::TESTS);
    tests.extend_from_slice(tests![kernel_log_clean, kmemleak_clean]);
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
