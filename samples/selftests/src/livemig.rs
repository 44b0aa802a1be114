// SPDX-License-Identifier: GPL-2.0

//! Live migration of a running guest, through the engine `vfmig migrate`
//! uses (the ivf-migrate crate): under traffic in both directions, back and
//! forth, and with failures injected, each of which must leave the guest
//! running on the source.

use std::time::Duration;

use ivf_migrate::{
    ErrorKind, Inject, MigrateError, MigrateOptions, PfTraffic, Report, TrafficStats, Vm,
};
use ivf_vfio::sysfs::Bdf;
use ivf_vfio::uapi::mig;
use ivf_vfio::Device;

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    livemig_baseline_no_traffic,
    livemig_back_and_forth_under_traffic,
    livemig_refused_future_version,
    livemig_refused_wrong_family,
    livemig_destination_busy,
    livemig_source_reset_during_precopy,
];

/// Frames per second, PF to guest and guest to PF: modest, for TCG.
const RATE: u32 = 300;
const TX_RATE: u32 = 200;
/// Frames a migration may lose beyond those sent while the guest was stopped.
const LOSS_SLACK: u64 = 25;

fn pf_iface() -> Result<String, String> {
    std::env::var("IVF_PF_IF").map_err(|_| "IVF_PF_IF not set (run under tools/vm/run)".into())
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn downtime_line(r: &Report) -> String {
    let d = &r.downtime;
    format!(
        "downtime {} us (quiesce {} save {} transfer {} load {} resume {}), {} rounds, {} KiB memory, {} B device state, {} pages after the stop",
        d.total_us,
        d.quiesce_us,
        d.save_us,
        d.transfer_us,
        d.load_us,
        d.resume_us,
        r.rounds.len(),
        r.memory_bytes / 1024,
        r.device_bytes,
        r.final_pages
    )
}

/// The guest on `vm` keeps receiving: over `ms`, its intact count grows by
/// at least a quarter of what the PF sent, with nothing flagged, and its
/// VF is RUNNING.
fn still_serving(vm: &Vm, traffic: &PfTraffic, ms: u64, what: &str) -> Outcome {
    let before = vm.snapshot();
    let sent0 = traffic.stats().sent;
    sleep_ms(ms);
    let after = vm.snapshot();
    let sent = traffic.stats().sent - sent0;
    let got = after.rx_count - before.rx_count;
    ensure!(
        sent > 0 && got * 4 >= sent,
        "{what}: the guest on {} received {got} of {sent} frames in {ms} ms",
        vm.bdf()
    );
    ensure_eq!(after.rx_bad, before.rx_bad, "{what}: frames flagged bad");
    ensure_eq!(
        s(vm.device().mig_state())?,
        mig::RUNNING,
        "{what}: state of {}",
        vm.bdf()
    );
    Ok(())
}

/// A guest on `vfs[0]` under traffic both ways.
fn running_guest(src: Bdf) -> Result<(Vm, PfTraffic), String> {
    let vm = s(Vm::start(src))?;
    let traffic = PfTraffic::start(&pf_iface()?, vm.mac(), RATE, vm.snapshot().rx_seq)?;
    vm.set_tx(TX_RATE, traffic.pf_mac);
    Ok((vm, traffic))
}

/// Stops the traffic after the last frames arrived, and judges it: every
/// payload intact, nothing twice (both directions).
fn finish(vm: Vm, traffic: PfTraffic, name: &str) -> Result<TrafficStats, String> {
    vm.set_tx(0, [0; 6]);
    sleep_ms(300);
    let t = traffic.stop();
    sleep_ms(50);
    let log = vm.rx_log();
    let g = vm.shutdown();
    println!(
        "# {name}: PF sent {}, guest received {} (lost {}: gaps {}), guest sent {}, PF received {} (lost {})",
        t.sent,
        g.rx_count,
        t.sent.saturating_sub(g.rx_count),
        g.lost,
        g.tx_count,
        t.from_guest.received,
        g.tx_count.saturating_sub(t.from_guest.received)
    );
    ensure_eq!(
        (g.duplicate, g.corrupt, g.rx_bad),
        (0, 0, 0),
        "guest tally (duplicates, corrupt, bad)"
    );
    ensure!(log.clean(), "the vCPU saw flagged frames: {log:?}");
    ensure_eq!(
        (t.from_guest.duplicate, t.from_guest.corrupt),
        (0, 0),
        "guest frames at the PF (duplicates, corrupt)"
    );
    ensure!(
        log.received == g.rx_count,
        "vCPU log {} frames, guest counter {}",
        log.received,
        g.rx_count
    );
    Ok(t)
}

fn livemig_baseline_no_traffic() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let mut vm = s(Vm::start(vfs[0]))?;
    sleep_ms(200);
    let before = vm.snapshot();
    let r = s(vm.migrate(vfs[1], &MigrateOptions::default(), &mut |_| {}))?;
    ensure!(r.memory_identical, "memory differs at switchover");
    ensure_eq!(vm.bdf(), vfs[1], "where the guest runs");
    ensure_eq!(
        s(vm.device().mig_state())?,
        mig::RUNNING,
        "destination state"
    );
    let after = vm.snapshot();
    ensure_eq!(
        (after.rx_seq, after.tx_count),
        (before.rx_seq, before.tx_count),
        "the guest's counters moved with it"
    );
    println!("# baseline (no traffic): {}", downtime_line(&r));
    // The source forgot the guest: the PF's switch delivers nothing to
    // VF0's pool, so the host reaches the guest at VF1 at once.
    let pf = std::env::var("IVF_PF").map_err(|e| e.to_string())?;
    let (rars, mut vlans) = crate::pf::pool_filters(&pf, 0)?;
    // VLAN 0 (untagged) is the PF's own entry for every reset VF.
    vlans.retain(|&v| v != 0);
    ensure!(
        rars.is_empty() && vlans.is_empty(),
        "after the guest left VF0, the PF still holds RAR {rars:?} and VLANs {vlans:?} for VF0's pool"
    );
    let (rars1, _) = crate::pf::pool_filters(&pf, 1)?;
    ensure!(
        rars1.iter().any(|r| r.1 == vm.mac()),
        "the PF holds no RAR for the guest's MAC on VF1's pool: {rars1:?}"
    );
    // And the guest on the destination is served.
    let traffic = PfTraffic::start(&pf_iface()?, vm.mac(), RATE, after.rx_seq)?;
    still_serving(&vm, &traffic, 700, "after the baseline migration")?;
    finish(vm, traffic, "livemig_baseline_no_traffic")?;
    Ok(())
}

fn livemig_back_and_forth_under_traffic() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let (mut vm, traffic) = running_guest(vfs[0])?;
    still_serving(&vm, &traffic, 700, "before migrating")?;
    let opts = MigrateOptions::default();
    let path = [vfs[1], vfs[0], vfs[1]];
    let mut downtimes = Vec::new();
    for (i, &dst) in path.iter().enumerate() {
        let src = vm.bdf();
        let lost0 = vm.snapshot().lost;
        let sent0 = traffic.stats().sent;
        let r = vm
            .migrate(dst, &opts, &mut |_| {})
            .map_err(|e| format!("migration {} ({src} -> {dst}): {e}", i + 1))?;
        ensure!(
            r.memory_identical,
            "migration {}: memory differs at switchover",
            i + 1
        );
        ensure_eq!(vm.bdf(), dst, "migration {}: where the guest runs", i + 1);
        still_serving(&vm, &traffic, 800, &format!("after migration {}", i + 1))?;
        let lost = vm.snapshot().lost - lost0;
        let sent = traffic.stats().sent - sent0;
        println!(
            "# migration {} {src} -> {dst}: {}; lost {lost} of {sent} frames sent meanwhile",
            i + 1,
            downtime_line(&r)
        );
        // Frames are lost only while the guest is stopped: what the PF sent
        // in the downtime, and a few around its edges (the VF's ring and the
        // PF's queue); a slow machine stretches the downtime, not the rule.
        let allowed = u64::from(RATE) * r.downtime.total_us / 1_000_000 + LOSS_SLACK;
        ensure!(
            lost <= allowed,
            "migration {}: lost {lost} of {sent} frames, more than the {allowed} its downtime of {} us explains",
            i + 1,
            r.downtime.total_us
        );
        downtimes.push(r.downtime.total_us);
    }
    let t = finish(vm, traffic, "livemig_back_and_forth_under_traffic")?;
    ensure!(t.sent > 0, "the PF sent nothing");
    println!(
        "# downtimes (us): {}",
        downtimes
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// A failed migration: the error's kind (and errno), the guest still on
/// the source, serving, and the destination free again.
fn expect_rollback(
    name: &str,
    vm: &Vm,
    traffic: &PfTraffic,
    result: Result<Report, MigrateError>,
    kind: ErrorKind,
    errno: Option<i32>,
    (src, dst): (Bdf, Bdf),
) -> Outcome {
    let e = match result {
        Ok(_) => return Err(format!("{name}: the migration succeeded")),
        Err(e) => e,
    };
    println!("# {name}: {e}");
    ensure_eq!(e.kind, kind, "error kind ({e})");
    if errno.is_some() {
        ensure_eq!(e.errno, errno, "errno ({e})");
    }
    ensure!(
        e.rollback
            .as_deref()
            .is_some_and(|r| r.contains("runs on it")),
        "the error does not say the source runs again: {e}"
    );
    ensure_eq!(vm.bdf(), src, "where the guest runs");
    still_serving(vm, traffic, 800, "after the failed migration")?;
    // The destination was let go.
    drop(s(Device::open_default(dst))?);
    Ok(())
}

/// A guest under traffic, a migration with `inject`: it must fail with
/// `kind` (and `errno`, when given), roll back, and leave the guest serving
/// on the source.
fn failed_migration(name: &str, inject: Inject, kind: ErrorKind, errno: Option<i32>) -> Outcome {
    let vfs = host::need_vfs(2)?;
    let (mut vm, traffic) = running_guest(vfs[0])?;
    still_serving(&vm, &traffic, 500, "before migrating")?;
    let opts = MigrateOptions {
        inject,
        ..Default::default()
    };
    let r = vm.migrate(vfs[1], &opts, &mut |_| {});
    expect_rollback(name, &vm, &traffic, r, kind, errno, (vfs[0], vfs[1]))?;
    finish(vm, traffic, name)?;
    Ok(())
}

fn livemig_refused_future_version() -> Outcome {
    failed_migration(
        "livemig_refused_future_version",
        Inject::FutureVersion,
        ErrorKind::Refused,
        Some(libc::EPROTONOSUPPORT),
    )
}

fn livemig_refused_wrong_family() -> Outcome {
    failed_migration(
        "livemig_refused_wrong_family",
        Inject::WrongFamily,
        ErrorKind::Refused,
        Some(libc::ENODEV),
    )
}

fn livemig_destination_busy() -> Outcome {
    let name = "livemig_destination_busy";
    let vfs = host::need_vfs(2)?;
    let (mut vm, traffic) = running_guest(vfs[0])?;
    still_serving(&vm, &traffic, 500, "before migrating")?;
    let r = {
        let _holder = s(Device::open_default(vfs[1]))?;
        vm.migrate(vfs[1], &MigrateOptions::default(), &mut |_| {})
    };
    // Nothing was touched: no rollback was needed, the guest never paused.
    let e = match r {
        Ok(_) => return Err("migrated to a busy destination".into()),
        Err(e) => e,
    };
    println!("# {name}: {e}");
    ensure!(e.message.contains("busy"), "the message says busy: {e}");
    ensure_eq!(e.kind, ErrorKind::Busy, "error kind ({e})");
    ensure_eq!(vm.bdf(), vfs[0], "where the guest runs");
    still_serving(&vm, &traffic, 800, "after the refused migration")?;
    finish(vm, traffic, name)?;
    Ok(())
}

fn livemig_source_reset_during_precopy() -> Outcome {
    failed_migration(
        "livemig_source_reset_during_precopy",
        Inject::ResetSource(1),
        ErrorKind::Source,
        None,
    )
}
