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
use std::ops::Not;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ivf_common::regs;
use ivf_guest::pf::PfPort;
use ivf_guest::{DmaMem, Guest, IOVA_BASE, MEM_SIZE, PAGE_SIZE, RING_SIZE};
use ivf_vfio::uapi::mig;
use ivf_vfio::{precopy_info, Backend, Device};

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    torture_racing_users_iommufd,
    torture_racing_users_container,
    torture_read_held_in_copy_to_user,
];

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

/// `struct uffdio_api`, `uffdio_register`, `uffdio_zeropage` (linux/userfaultfd.h).
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

const UFFD_API: u64 = 0xaa;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;

/// Anonymous memory whose first touch waits until [`Held::release`]: a
/// `copy_to_user` into it stays inside the driver's `read` until then.
struct Held {
    uffd: std::os::fd::OwnedFd,
    mem: DmaMem,
    len: usize,
}

// SAFETY: the mapping is only handed to the kernel (read, ioctls).
unsafe impl Send for Held {}
// SAFETY: as above.
unsafe impl Sync for Held {}

impl Held {
    /// `None` when the kernel has no userfaultfd.
    fn new(len: usize) -> Result<Option<Held>, String> {
        use std::os::fd::FromRawFd;
        // SAFETY: a syscall without pointers.
        let fd =
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOSYS) => Ok(None),
                _ => Err(format!("userfaultfd: {e}")),
            };
        }
        // SAFETY: a new fd nothing else owns.
        let uffd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        // SAFETY: the struct the ioctl takes, valid for the call.
        if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) } != 0 {
            return Err(format!("UFFDIO_API: {}", std::io::Error::last_os_error()));
        }
        let mem = s(DmaMem::new(len))?;
        let held = Held { uffd, mem, len };
        let mut reg = UffdioRegister {
            range: UffdioRange {
                start: held.mem.as_ptr() as u64,
                len: len as u64,
            },
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: as for UFFDIO_API.
        if unsafe { libc::ioctl(held.uffd.as_raw_fd(), UFFDIO_REGISTER, &mut reg) } != 0 {
            return Err(format!(
                "UFFDIO_REGISTER: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Some(held))
    }

    /// The held memory.
    fn mem(&self) -> *mut u8 {
        self.mem.as_ptr()
    }

    /// Waits up to `timeout` for a fault to be held.
    fn wait_fault(&self, timeout: Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.uffd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call's duration.
        unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) == 1 }
    }

    /// Lets every held fault go on (the pages read as zeros).
    fn release(&self) {
        let mut z = UffdioZeropage {
            range: UffdioRange {
                start: self.mem.as_ptr() as u64,
                len: self.len as u64,
            },
            mode: 0,
            zeropage: 0,
        };
        // SAFETY: as for UFFDIO_API. EEXIST (already released) is fine.
        unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_ZEROPAGE, &mut z) };
    }
}

/// The file-lifetime cases: a STOP_COPY data-fd `read` is held inside its
/// `copy_to_user` (userfaultfd) while the VF is reset, its device fd
/// closed, the VF unbound, its PF's VFs removed, and `rmmod` tried. Each
/// must complete while the read waits (none may wait for it), `rmmod`
/// must fail (the file holds the module), and the released read and the
/// next must fail `ENODEV`. Then the module and VFs are set up again.
fn torture_read_held_in_copy_to_user() -> Outcome {
    let vfs = host::need_vfs(1)?;
    let vf = vfs[0];
    let Some(held) = Held::new(4096)? else {
        return crate::ktap::skip("this kernel has no userfaultfd (CONFIG_USERFAULTFD)");
    };
    let pf = std::env::var("IVF_PF").map_err(|e| e.to_string())?;
    let numvfs_path = format!("/sys/bus/pci/devices/{pf}/sriov_numvfs");
    let numvfs = std::fs::read_to_string(&numvfs_path)
        .map_err(|e| format!("{numvfs_path}: {e}"))?
        .trim()
        .to_string();
    let log_from = host::dmesg_lines().len();
    let dev = s(Device::open_default(vf))?;
    s(dev.set_mig_state(mig::STOP))?;
    let data = s(dev.set_mig_state(mig::STOP_COPY))?.ok_or("STOP_COPY gave no data fd")?;
    let mut steps: Vec<String> = Vec::new();
    let released = AtomicBool::new(false);
    let outcome = std::thread::scope(|t| -> Result<(i64, i64), String> {
        let reader = t.spawn(|| {
            // SAFETY: reads into the held mapping, valid for its length.
            let n = unsafe { libc::read(data.as_raw_fd(), held.mem().cast(), 4096) };
            if n < 0 {
                -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
            } else {
                n as i64
            }
        });
        // Should anything wait for the held read, the read is let go after
        // a while, and that step shows how long it took.
        let watchdog = t.spawn(|| {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until && !released.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if !released.load(Ordering::Relaxed) {
                held.release();
            }
        });
        if !held.wait_fault(Duration::from_secs(10)) {
            held.release();
            released.store(true, Ordering::Relaxed);
            let _ = watchdog.join();
            return Err(format!(
                "the data-fd read never reached copy_to_user (it returned {:?})",
                reader.join()
            ));
        }
        let mut step = |what: &str, f: &mut dyn FnMut() -> Result<(), String>| {
            let t0 = Instant::now();
            let r = f();
            steps.push(format!(
                "{what}: {:?} in {} ms",
                r,
                t0.elapsed().as_millis()
            ));
            r.map(|_| t0.elapsed())
        };
        let reset = step("VFIO_DEVICE_RESET", &mut || s(dev.reset()));
        let mut dev = Some(dev);
        let close = step("close the device fd", &mut || {
            drop(dev.take());
            Ok(())
        });
        let unbind = step("unbind the VF", &mut || host::unbind(vf));
        let remove = step("sriov_numvfs = 0", &mut || {
            std::fs::write(&numvfs_path, "0").map_err(|e| e.to_string())
        });
        let rmmod = step(
            "rmmod (refused while the file is open)",
            &mut || match host::unload() {
                Ok(()) => Err("rmmod succeeded while a data fd was open".into()),
                Err(_) => Ok(()),
            },
        );
        let still_held = !released.load(Ordering::Relaxed) && reader.is_finished().not();
        held.release();
        released.store(true, Ordering::Relaxed);
        let first = reader.join().map_err(|_| "the reader panicked")?;
        let _ = watchdog.join();
        let mut buf = [0u8; 64];
        // SAFETY: reads into a local buffer.
        let second = unsafe { libc::read(data.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let second = if second < 0 {
            -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            second as i64
        };
        let slow: Vec<&String> = [&reset, &close, &unbind, &remove, &rmmod]
            .iter()
            .zip(steps.iter())
            .filter(|(r, _)| r.as_ref().map_or(true, |d| *d > Duration::from_secs(10)))
            .map(|(_, s)| s)
            .collect();
        ensure!(
            slow.is_empty() && still_held,
            "with the read held: {}",
            steps.join("; ")
        );
        Ok((first, second))
    });
    // Whatever happened: the file closed, the module and the VFs back.
    drop(data);
    drop(held);
    let restore = restore_vfs(&numvfs_path, &numvfs, &vfs);
    for line in &steps {
        println!("# held read: {line}");
    }
    let (first, second) = outcome?;
    restore?;
    println!("# held read: released read returned {first}, the next {second}");
    ensure_eq!(
        first,
        -i64::from(libc::ENODEV),
        "the released read (bytes or -errno)"
    );
    ensure_eq!(
        second,
        -i64::from(libc::ENODEV),
        "the next read (bytes or -errno)"
    );
    let bad = host::kernel_complaints(log_from);
    ensure!(bad.is_empty(), "kernel log:\n{}", bad.join("\n"));
    Ok(())
}

/// The module loaded, `numvfs` VFs on the PF again, every VF bound to it.
fn restore_vfs(
    numvfs_path: &str,
    numvfs: &str,
    vfs: &[ivf_vfio::sysfs::Bdf],
) -> Result<(), String> {
    if host::module_loaded() {
        host::unload()?;
    }
    std::fs::write(numvfs_path, numvfs).map_err(|e| format!("{numvfs_path} = {numvfs}: {e}"))?;
    host::load_and_bind_all()?;
    for vf in vfs {
        let driver = host::driver_of(*vf);
        ensure_eq!(
            driver.as_deref(),
            Some(host::DRIVER),
            "driver of {vf} after the restore"
        );
    }
    Ok(())
}
