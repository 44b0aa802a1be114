// SPDX-License-Identifier: GPL-2.0

//! `migrate`: vfmig as the VMM of a VF guest, live-migrating it (the
//! engine is the ivf-migrate crate, shared with the livemig selftests).

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;

use ivf_migrate::{
    GuestSnapshot, Inject, MigrateError, MigrateOptions, PfTraffic, Report, Round, SeqLog,
    TrafficStats, Vm,
};
use ivf_vfio::sysfs::{Bdf, PciDevice};

use crate::{busy_failure, print_json, Exit, Failure};

/// A fault to inject (for tests of the rollback).
#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum InjectArg {
    /// The compatibility frame sent to DST claims format major 2.
    FutureVersion,
    /// The compatibility frame sent to DST claims the ixgbe family.
    WrongFamily,
    /// VFIO_DEVICE_RESET on SRC in pre-copy round 1.
    ResetSource,
}

/// Options of `vfmig migrate`.
#[derive(Args, Debug)]
pub(crate) struct MigrateArgs {
    /// The VF the guest starts on.
    src: Bdf,
    /// The VF the guest moves to.
    dst: Bdf,
    /// Run PF-side traffic on this netdev (the VFs' PF): sequence-numbered
    /// frames to the guest at --rate, and a receiver of the guest's frames.
    #[arg(long, value_name = "PF_IFACE")]
    traffic: Option<String>,
    /// Frames per second the PF sends to the guest (with --traffic).
    #[arg(long, value_name = "PPS", default_value_t = 300)]
    rate: u32,
    /// Frames per second the guest sends to the PF (default: --rate with
    /// --traffic, else 0).
    #[arg(long, value_name = "PPS")]
    tx_rate: Option<u32>,
    /// Seconds the guest runs on SRC before the migration starts.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    before: f64,
    /// Seconds the guest runs on DST after the migration.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    after: f64,
    /// Stop pre-copy when a round copies at most this many 4 KiB pages.
    #[arg(long, value_name = "PAGES", default_value_t = 16)]
    threshold: usize,
    /// Stop pre-copy after this many rounds whatever remains.
    #[arg(long, value_name = "N", default_value_t = 30)]
    max_rounds: u32,
    /// Milliseconds between pre-copy rounds (the guest runs meanwhile).
    #[arg(long, value_name = "MS", default_value_t = 20)]
    round_ms: u64,
    /// Print the summary as JSON (progress goes to stderr).
    #[arg(long)]
    json: bool,
    /// Inject a fault (tests the rollback: SRC must keep running).
    #[arg(long, value_enum, hide = true)]
    inject: Option<InjectArg>,
}

/// The summary of `vfmig migrate`.
#[derive(Serialize)]
struct Summary {
    report: Report,
    guest: GuestSnapshot,
    vcpu_rx: SeqLog,
    traffic: Option<TrafficStats>,
    /// Frames the PF sent that the guest never received.
    lost_to_guest: Option<u64>,
    /// Frames the guest sent that the PF never received.
    lost_from_guest: Option<u64>,
    payloads_intact: bool,
    none_twice: bool,
    verdict: &'static str,
}

fn failure(e: &MigrateError) -> Failure {
    Failure::new(e.kind.into(), e.to_string())
}

/// The failure of opening SRC or DST (`Vm::start`, `Vm::migrate`, before
/// either touches SRC). The engine reports EBUSY as busy, naming the
/// holder; the EINVAL with which VFIO_DEVICE_BIND_IOMMUFD refuses a VF that
/// another user opened a moment before (it passed the engine's holder check
/// too) comes back as "other": re-check who holds the VF (`holders`) and
/// report it busy, as `save` and `load` do.
fn open_vf_failure(
    e: &MigrateError,
    vfs: [Bdf; 2],
    holders: impl Fn(Bdf) -> Option<String>,
) -> Failure {
    let raced = |bdf: &Bdf| {
        e.kind == ivf_migrate::ErrorKind::Other
            && e.step == format!("opening {bdf}")
            && e.errno == Some(libc::EINVAL)
            && e.message.starts_with("VFIO_DEVICE_BIND_IOMMUFD")
    };
    match vfs.iter().find(|b| raced(b)) {
        Some(&bdf) => {
            let f = busy_failure(bdf, holders(bdf), &e.message);
            Failure::new(f.code, format!("{} failed: {}", e.step, f.message))
        }
        None => failure(e),
    }
}

/// Who holds `bdf` through vfio, for a message.
fn holders_of(bdf: Bdf) -> Option<String> {
    crate::holders_text(&PciDevice::open(bdf).ok()?)
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs the guest for `secs`, a status line per second.
fn run_for(vm: &Vm, traffic: Option<&PfTraffic>, secs: f64, say: &dyn Fn(String)) {
    let end = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    loop {
        let left = end.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_secs(1)));
        let s = vm.snapshot();
        let pf = traffic
            .map(|t| {
                let st = t.stats();
                format!(
                    "; PF sent {}, got {} from the guest",
                    st.sent, st.from_guest.received
                )
            })
            .unwrap_or_default();
        say(format!(
            "  guest on {}: received {} (lost {}, bad {}), sent {}{pf}",
            vm.bdf(),
            s.rx_count,
            s.lost,
            s.rx_bad,
            s.tx_count
        ));
        if left <= Duration::from_secs(1) {
            break;
        }
    }
}

fn round_line(r: &Round) -> String {
    if r.round == 0 {
        format!(
            "  round 0: bulk copy, {} pages ({} KiB); device state {} bytes",
            r.dirty_pages,
            r.bytes_copied / 1024,
            r.device_bytes
        )
    } else {
        format!(
            "  round {}: {} pages dirty ({} by the device, {} by the CPU), {} KiB copied, remaining {} KiB",
            r.round,
            r.dirty_pages,
            r.device_pages,
            r.cpu_pages,
            r.bytes_copied / 1024,
            r.remaining_bytes / 1024
        )
    }
}

pub(crate) fn migrate(a: MigrateArgs) -> Result<(), Failure> {
    let json = a.json;
    let say = |s: String| {
        if json {
            errln!("{s}");
        } else {
            outln!("{s}");
        }
    };
    let opts = MigrateOptions {
        threshold_pages: a.threshold,
        max_rounds: a.max_rounds.max(1),
        round_interval: Duration::from_millis(a.round_ms),
        inject: match a.inject {
            None => Inject::None,
            Some(InjectArg::FutureVersion) => Inject::FutureVersion,
            Some(InjectArg::WrongFamily) => Inject::WrongFamily,
            Some(InjectArg::ResetSource) => Inject::ResetSource(1),
        },
    };
    if a.src == a.dst {
        return Err(Failure::new(
            Exit::Usage,
            format!("source and destination are both {}", a.src),
        ));
    }
    let vfs = [a.src, a.dst];
    let mut vm = Vm::start(a.src).map_err(|e| open_vf_failure(&e, vfs, holders_of))?;
    say(format!(
        "guest started on {} (MAC {}), vCPU running",
        a.src,
        mac_text(vm.mac())
    ));
    let traffic = match &a.traffic {
        Some(iface) => {
            let t = PfTraffic::start(iface, vm.mac(), a.rate, vm.snapshot().rx_seq)
                .map_err(|e| Failure::new(Exit::Other, format!("traffic on {iface}: {e}")))?;
            let tx = a.tx_rate.unwrap_or(a.rate);
            vm.set_tx(tx, t.pf_mac);
            say(format!(
                "traffic on {iface}: PF -> guest {} frames/s, guest -> PF {tx} frames/s",
                a.rate
            ));
            Some(t)
        }
        None => {
            if let Some(tx) = a.tx_rate.filter(|r| *r > 0) {
                vm.set_tx(tx, [0xff; 6]);
            }
            None
        }
    };
    run_for(&vm, traffic.as_ref(), a.before, &say);
    say(format!(
        "migrating {} -> {} (threshold {} pages, at most {} rounds)",
        a.src, a.dst, opts.threshold_pages, opts.max_rounds
    ));
    let result = vm.migrate(a.dst, &opts, &mut |r| say(round_line(r)));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // Who holds a busy DST is asked at once, before it can let go.
            let f = open_vf_failure(&e, vfs, holders_of);
            say(format!("migration failed: {}", f.message));
            if e.kind != ivf_migrate::ErrorKind::Rollback {
                run_for(&vm, traffic.as_ref(), 1.0, &say);
            }
            return Err(f);
        }
    };
    let d = &report.downtime;
    say(format!(
        "switched over: downtime {} us (quiesce {}, save {}, transfer {}, load {}, resume {})",
        d.total_us, d.quiesce_us, d.save_us, d.transfer_us, d.load_us, d.resume_us
    ));
    run_for(&vm, traffic.as_ref(), a.after, &say);
    vm.set_tx(0, [0; 6]);
    // Let the last frames arrive.
    std::thread::sleep(Duration::from_millis(300));
    let stats = traffic.map(|t| t.stop());
    std::thread::sleep(Duration::from_millis(100));
    let vcpu_rx = vm.rx_log();
    let guest = vm.shutdown();
    let lost_to_guest = stats.map(|s| s.sent.saturating_sub(guest.rx_count));
    let lost_from_guest = stats.map(|s| guest.tx_count.saturating_sub(s.from_guest.received));
    let payloads_intact = guest.corrupt == 0
        && vcpu_rx.corrupt == 0
        && stats.is_none_or(|s| s.from_guest.corrupt == 0);
    let none_twice = guest.duplicate == 0
        && vcpu_rx.duplicate == 0
        && stats.is_none_or(|s| s.from_guest.duplicate == 0);
    let pass = report.memory_identical && payloads_intact && none_twice;
    let summary = Summary {
        report,
        guest,
        vcpu_rx,
        traffic: stats,
        lost_to_guest,
        lost_from_guest,
        payloads_intact,
        none_twice,
        verdict: if pass { "pass" } else { "fail" },
    };
    if json {
        print_json(&summary)?;
    } else {
        print_summary(&summary);
    }
    if pass {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Verify,
            "verification failed (see the summary)",
        ))
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

fn print_summary(s: &Summary) {
    let r = &s.report;
    let d = &r.downtime;
    outln!("summary: {} -> {}", r.src, r.dst);
    outln!(
        "  pre-copy:      {} rounds in {} ms, then {} pages after the stop",
        r.rounds.len(),
        r.precopy_us / 1000,
        r.final_pages
    );
    outln!(
        "  moved:         {} KiB of memory, {} bytes of device state ({} before the stop)",
        r.memory_bytes / 1024,
        r.device_bytes,
        r.initial_bytes
    );
    outln!(
        "  downtime:      {} us = quiesce {} + save {} + transfer {} + load (incl. PF replay) {} + resume {}",
        d.total_us, d.quiesce_us, d.save_us, d.transfer_us, d.load_us, d.resume_us
    );
    outln!("  source closed: {} us after the switch", r.release_us);
    if let Some(t) = &s.traffic {
        outln!(
            "  PF -> guest:   sent {}, received {}, lost {} (in-sequence gaps {}), duplicates {}, corrupt {}",
            t.sent,
            s.guest.rx_count,
            s.lost_to_guest.unwrap_or(0),
            s.guest.lost,
            s.guest.duplicate,
            s.guest.corrupt
        );
        outln!(
            "  guest -> PF:   sent {}, received {}, lost {}, duplicates {}, corrupt {}",
            s.guest.tx_count,
            t.from_guest.received,
            s.lost_from_guest.unwrap_or(0),
            t.from_guest.duplicate,
            t.from_guest.corrupt
        );
    } else {
        outln!(
            "  guest:         received {}, sent {} (no traffic: --traffic PF_IFACE)",
            s.guest.rx_count,
            s.guest.tx_count
        );
    }
    outln!(
        "  verification:  memory identical at switchover: {}; payloads intact: {}; none twice: {} => {}",
        yes(r.memory_identical),
        yes(s.payloads_intact),
        yes(s.none_twice),
        s.verdict.to_uppercase()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivf_migrate::ErrorKind;

    const SRC: &str = "0000:01:10.0";
    const DST: &str = "0000:01:10.2";
    const BIND: &str =
        "VFIO_DEVICE_BIND_IOMMUFD on /dev/vfio/devices/vfio1: Invalid argument (os error 22)";

    fn vfs() -> [Bdf; 2] {
        [SRC.parse().unwrap(), DST.parse().unwrap()]
    }

    fn err(kind: ErrorKind, step: &str, message: &str, errno: Option<i32>) -> MigrateError {
        MigrateError {
            kind,
            step: step.into(),
            message: message.into(),
            errno,
            rollback: None,
        }
    }

    #[test]
    fn a_lost_open_race_is_busy_naming_the_holder() {
        let e = err(
            ErrorKind::Other,
            &format!("opening {DST}"),
            BIND,
            Some(libc::EINVAL),
        );
        let f = open_vf_failure(&e, vfs(), |b| {
            assert_eq!(b.to_string(), DST, "the VF that failed is re-checked");
            Some("pid 77 (vfmig)".into())
        });
        assert_eq!(f.code, Exit::Busy);
        assert!(
            f.message.starts_with(&format!(
                "opening {DST} failed: {DST} is in use by pid 77 (vfmig);"
            )),
            "{}",
            f.message
        );
        let f = open_vf_failure(&e, vfs(), |_| None);
        assert_eq!(f.code, Exit::Busy);
        assert!(
            f.message.contains("in use by another process"),
            "{}",
            f.message
        );
    }

    #[test]
    fn other_failures_keep_the_engines_code() {
        let no_lookup = |b: Bdf| -> Option<String> { panic!("holders of {b} looked up") };
        let cases = [
            // The engine found the holder itself (EBUSY).
            err(
                ErrorKind::Busy,
                &format!("opening {SRC}"),
                "busy",
                Some(libc::EBUSY),
            ),
            // EINVAL elsewhere than the bind, or in a later step.
            err(
                ErrorKind::Other,
                &format!("opening {SRC}"),
                "IOMMU_IOAS_ALLOC: Invalid argument",
                Some(libc::EINVAL),
            ),
            err(
                ErrorKind::Source,
                &format!("SRC {SRC}: PRE_COPY"),
                BIND,
                Some(libc::EINVAL),
            ),
            err(
                ErrorKind::Other,
                "opening 0000:02:00.0",
                BIND,
                Some(libc::EINVAL),
            ),
            err(
                ErrorKind::Refused,
                &format!("DST {DST}: RESUMING"),
                "refused",
                Some(libc::EPROTONOSUPPORT),
            ),
        ];
        for e in cases {
            let f = open_vf_failure(&e, vfs(), no_lookup);
            assert_eq!(f.code, Exit::from(e.kind), "{e}");
            assert_eq!(f.message, e.to_string());
        }
    }
}
