// SPDX-License-Identifier: GPL-2.0

//! `ivf-bench steps`: the device's share of a downtime, step by step, in
//! the test VM (`tools/vm/run --vfs 2 -- target/release/ivf-bench steps`).
//!
//! A guest migrates back and forth between two VFs. After each migration
//! the source's quiesce and save and the destination's load and resume are
//! read from the driver's `migration_profile`: wall time, MMIO counts and
//! the parts. One MMIO's cost is measured in the same VM (mapped BAR0
//! reads and writes from this process, swept over the registers a save
//! reads: the path a kernel `readl` takes under TCG too), which gives each
//! step's floor. Printed: the first
//! migration after boot (everything cold: under TCG that includes
//! translating the code), the median of the later ones (each still the
//! first use of a freshly opened VF: a migration always lands on one), the
//! floor, the ratio, and the median run's parts. Nothing is asserted.
//!
//! The median is the cold figure the issue asks for (the first migration
//! after the VF's open, what a VMM sees); the first after boot adds what
//! TCG spends translating the module's code, which a real host does not.

use std::time::Instant;

use ivf_common::regs::regmap;
use ivf_migrate::{MigrateOptions, Vm};
use ivf_vfio::sysfs::{self, Bdf, PciDevice, StepProfile};
use ivf_vfio::Device;

/// Options of `ivf-bench steps`.
pub struct Options {
    /// Migrations after the first.
    pub migrations: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { migrations: 8 }
    }
}

/// One MMIO's cost in nanoseconds: (read, write). Measured as the steps
/// access registers: a sweep over distinct registers (every queue and
/// interrupt register a save reads, where mapped), not one register read
/// in a loop, which TCG serves about twice as fast.
fn mmio_cost(vf: Bdf) -> Result<(f64, f64), String> {
    const SWEEPS: u32 = 500;
    let pci = PciDevice::open(vf).map_err(|e| e.to_string())?;
    let family = pci
        .supported_vf()
        .ok_or(format!("{vf} is no VF this driver supports"))?
        .family;
    let map = regmap(family);
    let dev = Device::open_cdev(vf).map_err(|e| e.to_string())?;
    let bar = dev.map_bar(0).map_err(|e| e.to_string())?;
    let mut regs = Vec::new();
    for q in 0..map.max_queue_pairs {
        regs.extend(map.rx.offsets().map(|o| map.rxq(o, q)));
        regs.extend(map.tx.offsets().map(|o| map.txq(o, q)));
    }
    regs.extend([map.eiac, map.eiam, map.ivar0, map.ivar_misc, map.eitr]);
    let regs: Vec<usize> = regs
        .into_iter()
        .map(|o| o as usize)
        .filter(|o| bar.is_mapped(*o))
        .collect();
    // The TX rings' bases and lengths: the VF was just reset (no queue in
    // use), so writing their own values back is harmless.
    let writable: Vec<(usize, u32)> = (0..map.max_queue_pairs)
        .flat_map(|q| [map.tx.bal, map.tx.bah, map.tx.len].map(|o| map.txq(o, q) as usize))
        .filter(|o| bar.is_mapped(*o))
        .map(|o| (o, bar.read32(o)))
        .collect();
    if regs.is_empty() || writable.is_empty() {
        return Err(format!("{vf}: no queue register of BAR0 is mapped"));
    }
    let t = Instant::now();
    let mut sink = 0u32;
    for _ in 0..SWEEPS {
        for &o in &regs {
            sink ^= bar.read32(o);
        }
    }
    let read = t.elapsed().as_nanos() as f64 / f64::from(SWEEPS) / regs.len() as f64;
    std::hint::black_box(sink);
    let t = Instant::now();
    for _ in 0..SWEEPS {
        for &(o, v) in &writable {
            bar.write32(o, v);
        }
    }
    let write = t.elapsed().as_nanos() as f64 / f64::from(SWEEPS) / writable.len() as f64;
    Ok((read, write))
}

fn profile(vf: Bdf, step: &str) -> Result<StepProfile, String> {
    sysfs::migration_profile(vf)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|p| p.step == step)
        .ok_or(format!("{vf}: no '{step}' in migration_profile"))
}

/// The median of `runs` by total time.
fn median(runs: &[StepProfile]) -> &StepProfile {
    let mut idx: Vec<usize> = (0..runs.len()).collect();
    idx.sort_by_key(|&i| runs[i].total_ns);
    &runs[idx[idx.len() / 2]]
}

/// Runs the migrations and prints the table.
pub fn run(opts: &Options) -> Result<(), String> {
    let vfs: Vec<Bdf> = std::env::var("IVF_VFS")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|b| b.parse().ok())
        .collect();
    let [a, b, ..] = vfs[..] else {
        return Err("two VFs are needed: run under tools/vm/run --vfs 2 (IVF_VFS)".into());
    };
    let (read_ns, write_ns) = mmio_cost(a)?;
    const STEPS: [&str; 4] = ["quiesce", "save", "load", "resume"];
    let mut runs: Vec<[StepProfile; 4]> = Vec::new();
    let mut vm = Vm::start(a).map_err(|e| e.to_string())?;
    let mut downtimes = Vec::new();
    for i in 0..=opts.migrations {
        let (src, dst) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let r = vm
            .migrate(dst, &MigrateOptions::default(), &mut |_| {})
            .map_err(|e| format!("migration {} {src} -> {dst}: {e}", i + 1))?;
        downtimes.push(r.downtime.total_us);
        runs.push([
            profile(src, "quiesce")?,
            profile(src, "save")?,
            profile(dst, "load")?,
            profile(dst, "resume")?,
        ]);
    }
    vm.shutdown();

    println!(
        "device steps of a migration: {} migrations between {a} and {b} (TCG: compare ratios)",
        runs.len()
    );
    println!(
        "one MMIO from this VM (a sweep over distinct registers): read {read_ns:.0} ns, write {write_ns:.0} ns"
    );
    println!(
        "floor = reads x {read_ns:.0} ns + writes x {write_ns:.0} ns; polls are waits for the \
         device or the PF, counted apart"
    );
    println!();
    println!(
        "{:<8} {:>10} {:>10} {:>6} {:>6} {:>5} {:>9} {:>7} {:>7}",
        "step", "boot_us", "cold_us", "reads", "writes", "polls", "floor_us", "x_boot", "x_cold"
    );
    let mut sum = (0u64, 0u64, 0.0f64);
    let mut medians = Vec::new();
    for (k, name) in STEPS.iter().enumerate() {
        let first = &runs[0][k];
        let later: Vec<StepProfile> = runs[1..].iter().map(|r| r[k].clone()).collect();
        let m = if later.is_empty() {
            first
        } else {
            median(&later)
        }
        .clone();
        let floor_ns = m.reads as f64 * read_ns + m.writes as f64 * write_ns;
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "{:<8} {:>10.0} {:>10.0} {:>6} {:>6} {:>5} {:>9.1} {:>7.0} {:>7.1}",
            name,
            us(first.total_ns),
            us(m.total_ns),
            m.reads,
            m.writes,
            m.polls,
            floor_ns / 1000.0,
            first.total_ns as f64 / floor_ns.max(1.0),
            m.total_ns as f64 / floor_ns.max(1.0)
        );
        sum.0 += first.total_ns;
        sum.1 += m.total_ns;
        sum.2 += floor_ns;
        medians.push(m);
    }
    println!(
        "{:<8} {:>10.0} {:>10.0} {:>6} {:>6} {:>5} {:>9.1} {:>7.0} {:>7.1}",
        "all",
        sum.0 as f64 / 1000.0,
        sum.1 as f64 / 1000.0,
        "",
        "",
        "",
        sum.2 / 1000.0,
        sum.0 as f64 / sum.2.max(1.0),
        sum.1 as f64 / sum.2.max(1.0)
    );
    println!(
        "goal (issue 30): all <= 5 x floor + 200 us = {:.0} us; each step <= 10 x its floor",
        5.0 * sum.2 / 1000.0 + 200.0
    );
    println!();
    for (what, profiles) in [
        ("median (cold)", &medians[..]),
        ("first (boot)", &runs[0][..]),
    ] {
        println!("where the {what} run's time went, us:");
        for m in profiles {
            let parts: Vec<String> = m
                .parts
                .iter()
                .map(|(p, ns)| format!("{p} {:.1}", *ns as f64 / 1000.0))
                .collect();
            println!("  {:<8} {}", m.step, parts.join(", "));
        }
    }
    let first = downtimes[0];
    downtimes.sort_unstable();
    println!();
    println!(
        "whole downtime (ivf-migrate's harness, us): first {first}, median {}",
        downtimes[downtimes.len() / 2]
    );
    Ok(())
}
