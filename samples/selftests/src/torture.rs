// SPDX-License-Identifier: GPL-2.0

//! A hostile VFIO user with threads: every operation the driver offers, at
//! once and in any order, on one VF; then the VF must still work and the
//! kernel must not have complained.
//!
//! Each thread loops over one kind of operation until the time is up:
//! migration-state arcs with data-fd reads, polls and closes; DMA logging
//! start, report and stop; unmapping and remapping the guest memory the
//! tracker reads descriptors from; trapped RX tail and mailbox writes;
//! `VFIO_DEVICE_RESET`. Errors are expected (a reset or an arc in another
//! thread makes many calls fail); a hang, a crash, a warning or a VF that
//! no longer receives is not.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ivf_common::regs;
use ivf_guest::pf::PfPort;
use ivf_guest::{Guest, IOVA_BASE, MEM_SIZE, PAGE_SIZE, RING_SIZE};
use ivf_vfio::uapi::mig;
use ivf_vfio::{precopy_info, Backend, Device};

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![torture_racing_users_iommufd, torture_racing_users_container];

const MAP: &regs::RegMap = &regs::IGB;
/// How long the threads race, per backend.
const RACE: Duration = Duration::from_secs(12);

fn torture_racing_users_iommufd() -> Outcome {
    // QEMU's way: the device on an HWPT of the IOAS the memory is mapped in.
    race(Backend::Hwpt)
}

fn torture_racing_users_container() -> Outcome {
    race(Backend::Group)
}

/// Counts of what the threads did, for the log.
#[derive(Default)]
struct Counts {
    arcs: AtomicU64,
    reads: AtomicU64,
    logs: AtomicU64,
    reports: AtomicU64,
    remaps: AtomicU64,
    tails: AtomicU64,
    mailbox: AtomicU64,
    resets: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    fn add(&self, what: &AtomicU64, ok: bool) {
        what.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn race(backend: Backend) -> Outcome {
    if !backend.available() {
        return crate::ktap::skip(format!("this kernel has no {backend:?} backend"));
    }
    let vf = host::need_vfs(1)?[0];
    let pf = PfPort::open()?;
    let log_from = host::dmesg_lines().len();
    let dev = s(Device::open(vf, backend))?;
    let g = s(Guest::start(&dev, None))?;
    let mem = g.memory().as_ptr() as *mut u8 as usize;
    let bar = s(dev.map_bar(0))?;
    let stop = AtomicBool::new(false);
    let n = Counts::default();
    let until = Instant::now() + RACE;
    let running = || !stop.load(Ordering::Relaxed) && Instant::now() < until;
    std::thread::scope(|t| {
        t.spawn(|| {
            let mut round = 0u32;
            while running() {
                arcs(&dev, &n, round % 16 == 0);
                round = round.wrapping_add(1);
            }
        });
        t.spawn(|| {
            while running() {
                let ok = dev
                    .log_start(&[(IOVA_BASE, MEM_SIZE as u64)], PAGE_SIZE as u64)
                    .is_ok();
                n.add(&n.logs, ok);
                for _ in 0..4 {
                    let ok = dev
                        .log_report(IOVA_BASE, MEM_SIZE as u64, PAGE_SIZE as u64)
                        .is_ok();
                    n.add(&n.reports, ok);
                }
                let _ = dev.log_stop();
            }
        });
        t.spawn(|| {
            while running() {
                // The memory the tracker reads descriptors from goes away
                // and comes back under it.
                let ok = dev.dma_unmap(MEM_SIZE as u64, IOVA_BASE).is_ok();
                let ok = dev
                    .dma_map(mem as *mut u8, MEM_SIZE as u64, IOVA_BASE)
                    .is_ok()
                    && ok;
                n.add(&n.remaps, ok);
            }
        });
        t.spawn(|| {
            let mut k = 0u32;
            while running() {
                // Trapped: the RX tail (the tracker reads the descriptors
                // it posts) and the mailbox (the snoop logs what it sends).
                bar.write32(MAP.rx.tail as usize, k % RING_SIZE);
                n.add(&n.tails, true);
                bar.write32(MAP.mbx_mem as usize, 0x0001_0000 | (k & 0xff));
                bar.write32(MAP.mbx_ctrl as usize, 1);
                n.add(&n.mailbox, true);
                k = k.wrapping_add(1);
            }
        });
        t.spawn(|| {
            while running() {
                std::thread::sleep(Duration::from_millis(150));
                let ok = dev.reset().is_ok();
                n.add(&n.resets, ok);
            }
        });
        while running() {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "# torture {backend:?}: {} arcs, {} data reads, {} logging sessions, {} reports, {} remaps, {} tail writes, {} mailbox writes, {} resets; {} calls failed",
        get(&n.arcs),
        get(&n.reads),
        get(&n.logs),
        get(&n.reports),
        get(&n.remaps),
        get(&n.tails),
        get(&n.mailbox),
        get(&n.resets),
        get(&n.errors)
    );
    ensure!(
        get(&n.resets) > 0 && get(&n.remaps) > 0 && get(&n.arcs) > 0,
        "a thread never ran"
    );
    drop(g);
    let _ = dev.log_stop();
    // After it all: a reset brings the VF back, and a fresh guest on it
    // receives every frame intact.
    s(dev.reset())?;
    ensure_eq!(
        s(dev.mig_state())?,
        mig::RUNNING,
        "state after the race and a reset"
    );
    let mut g = s(Guest::start(&dev, None))?;
    crate::dirty::stream(&pf, &mut g, 2 * RING_SIZE as u64 + 10)?;
    drop(g);
    drop(dev);
    let bad = host::kernel_complaints(log_from);
    ensure!(bad.is_empty(), "kernel log:\n{}", bad.join("\n"));
    Ok(())
}

/// One round of migration-state arcs, with the data fds read, polled and
/// closed (or dropped mid-stream); with `garbage`, a resume of bytes that
/// are no stream (the load refuses them and the device is in ERROR until
/// the next reset). Every call may fail: another thread resets the VF or
/// has moved the state.
fn arcs(dev: &Device, n: &Counts, garbage: bool) {
    let step = |to: u32| -> Option<File> {
        let r = dev.set_mig_state(to);
        n.add(&n.arcs, r.is_ok());
        r.ok().flatten()
    };
    if let Some(mut f) = step(mig::PRE_COPY) {
        let _ = precopy_info(&f);
        poll_once(&f);
        let mut buf = [0u8; 512];
        n.add(&n.reads, f.read(&mut buf).is_ok());
        // Dropped here, half read, while the device may go on.
    }
    step(mig::RUNNING);
    step(mig::STOP);
    if let Some(mut f) = step(mig::STOP_COPY) {
        let mut all = Vec::new();
        n.add(&n.reads, f.read_to_end(&mut all).is_ok());
    }
    step(mig::STOP);
    if garbage {
        if let Some(mut f) = step(mig::RESUMING) {
            use std::io::Write;
            // Not a stream: the load must refuse it whole.
            let _ = f.write(&[0x5a; 64]);
        }
        step(mig::STOP);
    }
    step(mig::RUNNING);
}

/// One `poll` of a data fd with no wait: it must answer, whatever the state.
fn poll_once(f: &File) {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call's duration.
    unsafe { libc::poll(&mut p, 1, 0) };
}
