// SPDX-License-Identifier: GPL-2.0

//! `ivf-bench rx-trap`: what trapping the RX tail page costs a guest, in
//! the test VM (`tools/vm/run -- target/release/ivf-bench rx-trap`).
//!
//! One VF receives the same stream from the PF twice per posting style:
//! with its RX tail page trapped (`dirty_tracking` "device", DMA logging
//! on) and mapped ("none", set while nothing holds the VF). The posting
//! styles are the samples' guest (one RDT write per descriptor) and one
//! RDT write per poll. Prints frames per second of each, their ratio, and
//! from `dirty_stats` the traps per second, descriptors per trap and
//! nanoseconds per trap. Figures print; nothing is asserted.

use std::time::{Duration, Instant};

use ivf_guest::pf::PfPort;
use ivf_guest::{Guest, IOVA_BASE, MEM_SIZE, RING_SIZE};
use ivf_vfio::sysfs::{self, Bdf, DirtyStats, DirtyTracking};
use ivf_vfio::Device;

/// Frames the PF sends before the guest drains them (below the 63 posted).
const BATCH: u64 = 48;
/// How long a batch may take to arrive.
const WAIT: Duration = Duration::from_secs(5);

/// Options of `ivf-bench rx-trap`.
pub struct Options {
    /// The VF (default: the first of `IVF_VFS`).
    pub vf: Option<Bdf>,
    /// Frames per measured run.
    pub frames: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vf: None,
            frames: 3000,
        }
    }
}

/// One measured run.
struct Run {
    mode: DirtyTracking,
    batched: bool,
    elapsed: Duration,
    /// Growth of the counters over the run.
    stats: DirtyStats,
}

fn s<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// The PF sends `n` frames in batches; the guest busy-polls for them and
/// must receive each once, in order, intact (else the figure means nothing).
fn stream(pf: &PfPort, g: &mut Guest<'_>, n: u64) -> Result<(), String> {
    let mac = g.mac();
    let mut seq = g.state().rx_seq;
    let end = seq + n;
    while seq < end {
        let batch = seq..(seq + BATCH).min(end);
        for q in batch.clone() {
            pf.send(mac, q)?;
        }
        let want = (batch.end - batch.start) as usize;
        let start = Instant::now();
        let mut got = Vec::with_capacity(want);
        while got.len() < want && start.elapsed() < WAIT {
            let more = g.poll_rx();
            if more.is_empty() {
                std::thread::yield_now();
            }
            got.extend(more);
        }
        if got.len() != want {
            return Err(format!(
                "{} of the {want} frames {batch:?} arrived within {WAIT:?}",
                got.len()
            ));
        }
        if let Some((r, q)) = got
            .iter()
            .zip(batch.clone())
            .find(|(r, q)| !r.intact || r.seq != *q)
        {
            return Err(format!(
                "frame {} in descriptor {} is corrupt or out of order (expected {q})",
                r.seq, r.desc
            ));
        }
        seq = batch.end;
    }
    Ok(())
}

/// Sets `mode` (the VF must be closed), opens the VF, starts a guest and
/// times `frames` frames after a ring's worth of warm-up.
fn measure(
    vf: Bdf,
    pf: &PfPort,
    mode: DirtyTracking,
    batched: bool,
    frames: u64,
) -> Result<Run, String> {
    s(sysfs::set_dirty_tracking(vf, mode))?;
    let dev = s(Device::open_cdev(vf))?;
    let mut g = s(Guest::start(&dev, None))?;
    g.set_rx_batched(batched);
    let trapped = !g.bar().is_mapped(ivf_common::regs::IGB.rx.tail as usize);
    if trapped != (mode == DirtyTracking::Device) {
        return Err(format!(
            "mode {mode}: the RX tail page is {}",
            if trapped { "trapped" } else { "mapped" }
        ));
    }
    if mode == DirtyTracking::Device {
        s(dev.log_start(&[(IOVA_BASE, MEM_SIZE as u64)], 4096))?;
    }
    stream(pf, &mut g, u64::from(RING_SIZE))?;
    let before = s(sysfs::dirty_stats(vf))?;
    let t = Instant::now();
    stream(pf, &mut g, frames)?;
    let elapsed = t.elapsed();
    let after = s(sysfs::dirty_stats(vf))?;
    if mode == DirtyTracking::Device {
        s(dev.log_stop())?;
    }
    Ok(Run {
        mode,
        batched,
        elapsed,
        stats: after.since(&before),
    })
}

fn posting(batched: bool) -> &'static str {
    if batched {
        "per poll"
    } else {
        "per descriptor"
    }
}

/// Runs the four measurements on one VF, restoring its mode after.
pub fn run(opts: &Options) -> Result<(), String> {
    let vf = match opts.vf {
        Some(vf) => vf,
        None => std::env::var("IVF_VFS")
            .ok()
            .and_then(|v| v.split_whitespace().next().and_then(|b| b.parse().ok()))
            .ok_or("no VF: give --vf BDF or run under tools/vm/run (IVF_VFS)")?,
    };
    let pf = PfPort::open()?;
    let original = s(sysfs::dirty_tracking(vf))?;
    let mut runs = Vec::new();
    let mut result = Ok(());
    'all: for batched in [false, true] {
        for mode in [DirtyTracking::Device, DirtyTracking::None] {
            match measure(vf, &pf, mode, batched, opts.frames) {
                Ok(r) => runs.push(r),
                Err(e) => {
                    result = Err(format!("{vf}, mode {mode}, RDT {}: {e}", posting(batched)));
                    break 'all;
                }
            }
        }
    }
    let restored = s(sysfs::set_dirty_tracking(vf, original));
    result?;
    restored?;

    println!(
        "RX tail trap on VF {vf}: {} frames of {} bytes per run, PF -> guest",
        opts.frames,
        ivf_guest::FRAME_LEN
    );
    println!("(the test VM runs under TCG: compare the ratios, not the rates)");
    println!();
    println!(
        "{:<15} {:<8} {:>10} {:>9} {:>10} {:>9}",
        "RDT write", "RX tail", "frames/s", "traps/s", "desc/trap", "ns/trap"
    );
    let rate = |r: &Run| opts.frames as f64 / r.elapsed.as_secs_f64().max(1e-9);
    for r in &runs {
        let st = &r.stats;
        let tail = match r.mode {
            DirtyTracking::Device => "trapped",
            DirtyTracking::None => "mapped",
        };
        if r.mode == DirtyTracking::Device && st.traps > 0 {
            println!(
                "{:<15} {:<8} {:>10.0} {:>9.0} {:>10.2} {:>9}",
                posting(r.batched),
                tail,
                rate(r),
                st.traps as f64 / r.elapsed.as_secs_f64().max(1e-9),
                st.descriptors as f64 / st.traps as f64,
                st.trap_ns / st.traps
            );
        } else {
            println!(
                "{:<15} {:<8} {:>10.0} {:>9} {:>10} {:>9}",
                posting(r.batched),
                tail,
                rate(r),
                "-",
                "-",
                "-"
            );
        }
    }
    println!();
    for batched in [false, true] {
        let find = |mode| runs.iter().find(|r| r.batched == batched && r.mode == mode);
        if let (Some(t), Some(m)) = (find(DirtyTracking::Device), find(DirtyTracking::None)) {
            println!(
                "trapped / mapped frames per second, RDT write {}: {:.2}",
                posting(batched),
                rate(t) / rate(m)
            );
        }
    }
    if let Some(max) = runs
        .iter()
        .filter(|r| r.mode == DirtyTracking::Device)
        .map(|r| r.stats.max_descriptors_per_trap)
        .max()
    {
        println!("most descriptors one trap posted: {max} (ring of {RING_SIZE})");
    }
    Ok(())
}
