// SPDX-License-Identifier: GPL-2.0

//! A minimal KTAP v1 producer, as kselftest's `ksft_*` helpers print it.

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

/// Outcome of one test.
pub type Outcome = Result<(), String>;

/// Turns any displayable error into a test's failure reason, for `?`.
pub fn s<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// What starts a skipped test's reason (see [`skip`]).
const SKIP: &str = "SKIP: ";

/// Skips the test: KTAP `ok N name # SKIP reason`, counted as a skip. For
/// what this kernel or machine cannot do, never for a failure.
pub fn skip(reason: impl std::fmt::Display) -> Outcome {
    Err(format!("{SKIP}{reason}"))
}

/// A named test.
pub struct Test {
    /// KTAP test name.
    pub name: &'static str,
    /// The test body: `Err(reason)` fails it.
    pub run: fn() -> Outcome,
}

/// A suite's tests, in run order: `tests![fn_a, fn_b]`. Each test's KTAP
/// name is its function's name, so the name is written once.
#[macro_export]
macro_rules! tests {
    ($($run:ident),+ $(,)?) => {
        &[$(&$crate::ktap::Test {
            name: stringify!($run),
            run: $run,
        }),+]
    };
}

/// Runs `tests` in order, printing KTAP, and returns (passed, failed).
pub fn run_all(tests: &[&Test]) -> (usize, usize) {
    println!("KTAP version 1");
    // Which host this ran on, for a reader comparing runs.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("# kernel: {}", release.trim());
    println!("# machine: {}", std::env::consts::ARCH);
    if let Ok(q) = std::env::var("IVF_QEMU_VERSION") {
        println!("# qemu: {q}");
    }
    if let Some(nic) = nic() {
        println!("# nic: {nic}");
    }
    println!("1..{}", tests.len());
    let (mut pass, mut fail, mut skipped) = (0, 0, 0);
    for (i, t) in tests.iter().enumerate() {
        let _ = std::io::stdout().flush();
        // A panicking test fails; it must not hide the others.
        let started = std::time::Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(t.run))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&p))));
        // Where a run's time goes (TCG makes some tests slow).
        println!("# {}: {} ms", t.name, started.elapsed().as_millis());
        match outcome {
            Ok(()) => {
                pass += 1;
                println!("ok {} {}", i + 1, t.name);
            }
            Err(reason) if reason.starts_with(SKIP) => {
                skipped += 1;
                println!("ok {} {} # SKIP {}", i + 1, t.name, &reason[SKIP.len()..]);
            }
            Err(reason) => {
                fail += 1;
                for line in reason.lines() {
                    println!("# {}: {}", t.name, line);
                }
                println!("not ok {} {}", i + 1, t.name);
            }
        }
    }
    println!("# Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skipped} error:0");
    (pass, fail)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Fails the test with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Fails the test unless `a == b`, showing both values.
#[macro_export]
macro_rules! ensure_eq {
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!("{}: got {:?}, expected {:?}", format!($($fmt)+), a, b));
        }
    }};
}

/// The NIC whose VFs the run uses, from the PF's PCI IDs (`IVF_PF`):
/// "82576 (8086:10c9)", "82599 (8086:10f7)"; `None` without a PF.
fn nic() -> Option<String> {
    let pf = std::env::var("IVF_PF").ok()?;
    let id = |f: &str| {
        std::fs::read_to_string(format!("/sys/bus/pci/devices/{pf}/{f}"))
            .ok()
            .and_then(|t| u16::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok())
    };
    let (vendor, device) = (id("vendor")?, id("device")?);
    let name = ivf_common::ids::lookup_pf(vendor, device).map_or("unknown", |p| p.name);
    Some(format!("{name} ({vendor:04x}:{device:04x})"))
}
