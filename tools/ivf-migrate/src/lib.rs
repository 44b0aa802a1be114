// SPDX-License-Identifier: GPL-2.0

//! Live migration of a running VF "guest" between two VFs, as a VMM does
//! it: the engine behind `vfmig migrate` and the `livemig` selftests.
//!
//! A [`Vm`] is a minimal VMM: it runs an [`ivf_guest::Guest`] (whose whole
//! state lives in its DMA memory) in a worker thread, the "vCPU", which
//! polls RX (loss-tolerant: a gap is a loss, a duplicate or corrupt frame
//! is flagged) and optionally sends frames at a fixed rate.
//! [`Vm::migrate`] moves it to another VF:
//!
//! 1. open the destination (busy or unsupported: nothing else happened);
//! 2. DMA logging on for the guest memory; source RUNNING -> PRE_COPY; its
//!    initial bytes (the compatibility frame) go at once into the
//!    destination in RESUMING, so a destination that cannot load the
//!    source refuses before the source stops;
//! 3. rounds: report the device's dirty pages and take the guest's
//!    CPU-dirty pages (under the guest lock, as KVM's dirty log), copy them
//!    to the destination's memory buffer, until a round's pages are at most
//!    the threshold (or the maximum of rounds);
//! 4. switchover (the downtime): vCPU stopped; source PRE_COPY ->
//!    PRE_COPY_P2P (quiesce) -> STOP_COPY (save), the rest of the stream;
//!    last dirty report and copy; the destination memory must equal the
//!    source's byte for byte; the stream into the destination, RESUMING ->
//!    STOP (load, with the PF mailbox replay); the guest adopted on the
//!    destination with the copied memory; destination RUNNING; the vCPU
//!    continues there. The source is closed (which resets it).
//!
//! Any failure before the destination runs rolls back: the source is put
//! back in RUNNING (after a reset the guest re-initialises the device), the
//! vCPU resumes on it, the destination is closed, and the error says which
//! step failed (its [`ErrorKind`] decides the exit code of `vfmig`).

mod traffic;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ivf_common::stream;
use ivf_guest::{Guest, GuestState, RxTally, IOVA_BASE, MEM_PAGES, MEM_SIZE, PAGE_SIZE};
use ivf_vfio::sysfs::{Bdf, PciDevice};
use ivf_vfio::uapi::mig;
use ivf_vfio::{dirty_iovas, precopy_info, read_data, write_data, Device};
use serde::Serialize;

pub use traffic::{PfTraffic, TrafficStats};

/// The driver whose VFs the engine migrates.
pub const DRIVER: &str = "intel_vf_vfio_pci";

/// Sequence accounting of a stream of test frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeqLog {
    /// Intact frames in sequence (gaps allowed).
    pub received: u64,
    /// Frames missing: the sum of the gaps after the first frame seen.
    pub lost: u64,
    /// Frames seen twice (or older than one seen).
    pub duplicate: u64,
    /// Frames whose payload did not match their sequence number.
    pub corrupt: u64,
    /// The sequence number expected next.
    pub next: u64,
}

impl SeqLog {
    /// Accounts for frame `seq`.
    pub fn record(&mut self, seq: u64, intact: bool) {
        if !intact {
            self.corrupt += 1;
        } else if self.received > 0 && seq < self.next {
            self.duplicate += 1;
        } else {
            if self.received > 0 {
                self.lost += seq - self.next;
            }
            self.received += 1;
            self.next = seq + 1;
        }
    }

    /// Whether every frame was intact and none came twice.
    pub fn clean(&self) -> bool {
        self.duplicate == 0 && self.corrupt == 0
    }
}

/// What went wrong (`vfmig`'s exit-code table gives each kind its code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ErrorKind {
    /// Bad arguments (source and destination the same VF, ...).
    Usage,
    /// No such PCI device.
    NoDevice,
    /// Not a supported VF, or not bound to the driver.
    Unsupported,
    /// The destination (or the source) is held by another user.
    Busy,
    /// The destination refused the stream (compatibility frame or state).
    Refused,
    /// The source failed during the migration (reset, a refused state
    /// change, DMA logging): the migration was abandoned.
    Source,
    /// The destination failed after accepting the stream.
    Destination,
    /// The destination's memory would not equal the source's.
    Verify,
    /// The source could not be brought back to running.
    Rollback,
    /// Anything else.
    Other,
}

/// A failed migration (or VM start).
#[derive(Debug, Clone, Serialize)]
pub struct MigrateError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// The step that failed, e.g. "DST RESUMING: compatibility frame".
    pub step: String,
    /// What the kernel or the check said.
    pub message: String,
    /// The errno, when the kernel gave one.
    pub errno: Option<i32>,
    /// After the rollback: where the guest runs, or why it could not be
    /// brought back.
    pub rollback: Option<String>,
}

impl MigrateError {
    fn new(kind: ErrorKind, step: impl Into<String>, message: impl Into<String>) -> Self {
        MigrateError {
            kind,
            step: step.into(),
            message: message.into(),
            errno: None,
            rollback: None,
        }
    }

    fn vfio(kind: ErrorKind, step: impl Into<String>, e: &ivf_vfio::Error) -> Self {
        MigrateError {
            errno: e.errno(),
            ..MigrateError::new(kind, step, e.to_string())
        }
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step, self.message)?;
        if let Some(r) = &self.rollback {
            write!(f, "; {r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MigrateError {}

/// A fault the engine injects on purpose (the tests; `vfmig migrate
/// --inject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Inject {
    /// None.
    #[default]
    None,
    /// The compatibility frame sent to the destination claims format major
    /// 2 (CRC resealed): the destination must refuse it (EPROTONOSUPPORT).
    FutureVersion,
    /// The compatibility frame claims the ixgbe family (CRC resealed): the
    /// igb destination must refuse it (ENODEV).
    WrongFamily,
    /// VFIO_DEVICE_RESET on the source at the start of pre-copy round `n`.
    ResetSource(u32),
}

/// How a migration iterates.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Stop iterating when a round copied at most this many pages.
    pub threshold_pages: usize,
    /// Stop iterating after this many rounds whatever remains.
    pub max_rounds: u32,
    /// Time between rounds (the guest runs meanwhile).
    pub round_interval: Duration,
    /// A fault to inject.
    pub inject: Inject,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            threshold_pages: 16,
            max_rounds: 30,
            round_interval: Duration::from_millis(20),
            inject: Inject::None,
        }
    }
}

/// One pre-copy round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Round {
    /// 0 is the bulk copy of the whole memory.
    pub round: u32,
    /// Pages copied: the device's report and the CPU's, without overlap.
    pub dirty_pages: usize,
    /// Pages the device reported.
    pub device_pages: usize,
    /// Pages the guest's CPU wrote.
    pub cpu_pages: usize,
    /// Bytes of memory copied this round.
    pub bytes_copied: u64,
    /// Bytes the final copy would still take if the guest stopped now
    /// (this round's dirty pages).
    pub remaining_bytes: u64,
    /// Device-state bytes moved this round.
    pub device_bytes: u64,
}

/// The downtime, split.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Downtime {
    /// vCPU stop to switchover start plus RUNNING -> PRE_COPY_P2P (quiesce).
    pub quiesce_us: u64,
    /// PRE_COPY_P2P -> STOP_COPY and reading the rest of the stream.
    pub save_us: u64,
    /// Last dirty report, memory copy, stream written to the destination.
    pub transfer_us: u64,
    /// Destination RESUMING -> STOP: register load and PF mailbox replay.
    pub load_us: u64,
    /// Guest adopted on the destination, RUNNING, vCPU released.
    pub resume_us: u64,
    /// The sum: vCPU stop to the vCPU running on the destination.
    pub total_us: u64,
}

/// What a migration did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The source VF.
    pub src: String,
    /// The destination VF.
    pub dst: String,
    /// The pre-copy rounds (the final copy not included).
    pub rounds: Vec<Round>,
    /// Pages copied after the stop.
    pub final_pages: usize,
    /// Bytes of guest memory moved in all (rounds and final copy).
    pub memory_bytes: u64,
    /// Bytes of device state moved (the whole stream).
    pub device_bytes: u64,
    /// The compatibility frame's length (moved before the stop).
    pub initial_bytes: u64,
    /// Pre-copy time: logging on to the vCPU stop.
    pub precopy_us: u64,
    /// The downtime.
    pub downtime: Downtime,
    /// Closing the source (its reset) after the switch.
    pub release_us: u64,
    /// The destination's memory equalled the source's at the switchover
    /// (checked before the destination was loaded).
    pub memory_identical: bool,
    /// The guest's bookkeeping at the switchover.
    pub guest_at_switchover: GuestSnapshot,
}

/// A guest's counters, from its own memory and from the vCPU's log.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct GuestSnapshot {
    /// Frames received intact (guest counter).
    pub rx_count: u64,
    /// Frames flagged (duplicates and corrupt; guest counter).
    pub rx_bad: u64,
    /// The next sequence number the guest expects.
    pub rx_seq: u64,
    /// Frames sent.
    pub tx_count: u64,
    /// Frames lost (tally).
    pub lost: u64,
    /// Duplicates (tally).
    pub duplicate: u64,
    /// Corrupt frames (tally).
    pub corrupt: u64,
}

impl GuestSnapshot {
    fn of(st: GuestState, t: RxTally) -> Self {
        GuestSnapshot {
            rx_count: st.rx_count,
            rx_bad: st.rx_bad,
            rx_seq: st.rx_seq,
            tx_count: st.tx_count,
            lost: t.lost,
            duplicate: t.duplicate,
            corrupt: t.corrupt,
        }
    }
}

struct VcpuShared {
    guest: Mutex<Option<Guest<'static>>>,
    paused: AtomicBool,
    quit: AtomicBool,
    /// Guest TX: (frames per second, destination MAC).
    tx: Mutex<Option<(u32, [u8; 6])>>,
    /// Every frame the guest received, as the vCPU saw them.
    rx: Mutex<SeqLog>,
}

fn vcpu_loop(sh: &VcpuShared) {
    let mut next_tx = Instant::now();
    while !sh.quit.load(Ordering::Relaxed) {
        if !sh.paused.load(Ordering::Relaxed) {
            let mut guard = sh.guest.lock().unwrap();
            // Paused while we waited for the lock: do nothing.
            if let (Some(g), false) = (guard.as_mut(), sh.paused.load(Ordering::Relaxed)) {
                let got = g.poll_rx_tolerant();
                if !got.is_empty() {
                    let mut log = sh.rx.lock().unwrap();
                    for r in got {
                        // The guest flags a duplicate as not intact; the log
                        // tells it from corruption by its sequence number.
                        let intact = r.intact || (r.seq != u64::MAX && r.seq < log.next);
                        log.record(r.seq, intact);
                    }
                }
                if let Some((rate, dst)) = *sh.tx.lock().unwrap() {
                    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                    let now = Instant::now();
                    if now >= next_tx && g.tx_slot_free() {
                        g.post_tx(dst);
                        next_tx += period;
                        if now > next_tx + period * 20 {
                            next_tx = now;
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Opens a VF bound to the driver, saying who holds it if it is busy.
pub fn open_vf(bdf: Bdf) -> Result<Device, MigrateError> {
    let step = format!("opening {bdf}");
    let pci =
        PciDevice::open(bdf).map_err(|e| MigrateError::vfio(ErrorKind::NoDevice, &step, &e))?;
    if pci.supported_vf().is_none() {
        return Err(MigrateError::new(
            ErrorKind::Unsupported,
            step,
            format!(
                "{bdf} is {:04x}:{:04x}, not a VF that {DRIVER} supports",
                pci.vendor, pci.device
            ),
        ));
    }
    if pci.driver.as_deref() != Some(DRIVER) {
        return Err(MigrateError::new(
            ErrorKind::Unsupported,
            step,
            format!(
                "{bdf} is bound to {}, not {DRIVER}",
                pci.driver.as_deref().unwrap_or("no driver")
            ),
        ));
    }
    // This process (the VMM itself, or a test holding the VF) is one
    // holder `vfio_holders_text` leaves out.
    if pci.held_by_this_process() {
        return Err(MigrateError {
            errno: Some(libc::EBUSY),
            ..MigrateError::new(
                ErrorKind::Busy,
                step,
                format!(
                    "{bdf} is busy: this process (pid {}) already holds it open through another file",
                    std::process::id()
                ),
            )
        });
    }
    if let Some(who) = pci.vfio_holders_text() {
        return Err(MigrateError {
            errno: Some(libc::EBUSY),
            ..MigrateError::new(
                ErrorKind::Busy,
                step,
                format!("{bdf} is busy, in use by {who}"),
            )
        });
    }
    Device::open_default(bdf).map_err(|e| {
        if e.errno() == Some(libc::EBUSY) {
            let who = pci
                .vfio_holders_text()
                .unwrap_or_else(|| "another open file".to_string());
            MigrateError {
                errno: e.errno(),
                ..MigrateError::new(
                    ErrorKind::Busy,
                    step.clone(),
                    format!("{bdf} is busy, in use by {who}: {e}"),
                )
            }
        } else {
            MigrateError::vfio(ErrorKind::Other, &step, &e)
        }
    })
}

/// A running guest on a VF, with its vCPU thread.
pub struct Vm {
    shared: Arc<VcpuShared>,
    thread: Option<JoinHandle<()>>,
    dev: Arc<Device>,
    bdf: Bdf,
}

/// The pages of the guest memory a report at `page_size` marks.
fn report_pages(bitmap: &[u64], page_size: u64) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let per = (page_size / PAGE_SIZE as u64).max(1);
    for iova in dirty_iovas(bitmap, IOVA_BASE, page_size) {
        for k in 0..per {
            let off = iova - IOVA_BASE + k * PAGE_SIZE as u64;
            if off < MEM_SIZE as u64 {
                out.insert((off / PAGE_SIZE as u64) as usize);
            }
        }
    }
    out
}

fn copy_pages(shadow: &mut [u8], mem: &[u8], pages: &BTreeSet<usize>) {
    for &p in pages {
        let r = p * PAGE_SIZE..(p + 1) * PAGE_SIZE;
        shadow[r.clone()].copy_from_slice(&mem[r]);
    }
}

/// `d` in whole microseconds, the unit of [`Report`] and [`Downtime`].
fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

impl Vm {
    /// Opens `bdf`, starts a fresh guest on it and its vCPU.
    pub fn start(bdf: Bdf) -> Result<Vm, MigrateError> {
        let dev = Arc::new(open_vf(bdf)?);
        let g = Guest::start_shared(dev.clone(), None).map_err(|e| {
            MigrateError::new(
                ErrorKind::Other,
                format!("starting the guest on {bdf}"),
                e.to_string(),
            )
        })?;
        let shared = Arc::new(VcpuShared {
            guest: Mutex::new(Some(g)),
            paused: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            tx: Mutex::new(None),
            rx: Mutex::new(SeqLog::default()),
        });
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vcpu".into())
            .spawn(move || vcpu_loop(&sh))
            .map_err(|e| MigrateError::new(ErrorKind::Other, "starting the vCPU", e.to_string()))?;
        Ok(Vm {
            shared,
            thread: Some(thread),
            dev,
            bdf,
        })
    }

    /// The VF the guest runs on.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The device the guest runs on (to inject faults from outside).
    pub fn device(&self) -> &Device {
        &self.dev
    }

    fn guest(&self) -> MutexGuard<'_, Option<Guest<'static>>> {
        self.shared.guest.lock().unwrap()
    }

    /// The guest's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.guest().as_ref().expect("a guest").mac()
    }

    /// The guest's counters (from its memory).
    pub fn snapshot(&self) -> GuestSnapshot {
        let g = self.guest();
        let g = g.as_ref().expect("a guest");
        GuestSnapshot::of(g.state(), g.tally())
    }

    /// Every frame the vCPU saw the guest receive.
    pub fn rx_log(&self) -> SeqLog {
        *self.shared.rx.lock().unwrap()
    }

    /// Makes the guest send test frames to `dst` at `rate` per second
    /// (`rate` 0: stop sending).
    pub fn set_tx(&self, rate: u32, dst: [u8; 6]) {
        *self.shared.tx.lock().unwrap() = (rate > 0).then_some((rate, dst));
    }

    /// Stops the vCPU and the guest (the device closes, and resets).
    pub fn shutdown(mut self) -> GuestSnapshot {
        let snap = self.snapshot();
        self.stop_thread();
        snap
    }

    fn stop_thread(&mut self) {
        self.shared.quit.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Live-migrates the guest to `dst_bdf`; `progress` sees each pre-copy
    /// round. On failure the guest runs on the source again (unless the
    /// error's kind is [`ErrorKind::Rollback`]).
    pub fn migrate(
        &mut self,
        dst_bdf: Bdf,
        opts: &MigrateOptions,
        progress: &mut dyn FnMut(&Round),
    ) -> Result<Report, MigrateError> {
        if dst_bdf == self.bdf {
            return Err(MigrateError::new(
                ErrorKind::Usage,
                "arguments",
                format!("source and destination are both {dst_bdf}"),
            ));
        }
        // Nothing is touched before the destination is ours.
        let dst = Arc::new(open_vf(dst_bdf)?);
        match self.run(&dst, dst_bdf, opts, progress) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.rollback(e, dst)),
        }
    }

    /// Brings the source back to RUNNING with the vCPU on it.
    fn rollback(&mut self, mut e: MigrateError, dst: Arc<Device>) -> MigrateError {
        let mut guard = self.shared.guest.lock().unwrap();
        let src = &self.dev;
        let _ = src.log_stop();
        let mut notes = Vec::new();
        let state = src.mig_state().unwrap_or(mig::ERROR);
        if state != mig::RUNNING {
            if let Err(err) = src.set_mig_state(mig::RUNNING) {
                notes.push(format!(
                    "source {} -> RUNNING failed ({err}), reset it",
                    mig::name(state)
                ));
                if let Err(err) = src.reset() {
                    e.rollback = Some(format!("the source could not be reset: {err}"));
                    e.kind = ErrorKind::Rollback;
                    return e;
                }
            }
        }
        let g = guard.as_mut().expect("a guest");
        if !g.rx_enabled() {
            notes.push("the source had been reset: the guest re-initialised it".into());
            if let Err(err) = g.recover_after_reset() {
                e.rollback = Some(format!(
                    "the guest could not re-initialise the reset source: {err}"
                ));
                e.kind = ErrorKind::Rollback;
                return e;
            }
        }
        self.shared.paused.store(false, Ordering::Relaxed);
        drop(guard);
        // The destination is closed (and so reset).
        drop(dst);
        let now = self.dev.mig_state().map(mig::name).unwrap_or("unknown");
        notes.push(format!(
            "source {} is {now} again and the guest runs on it",
            self.bdf
        ));
        e.rollback = Some(notes.join("; "));
        e
    }

    fn run(
        &mut self,
        dst: &Arc<Device>,
        dst_bdf: Bdf,
        opts: &MigrateOptions,
        progress: &mut dyn FnMut(&Round),
    ) -> Result<Report, MigrateError> {
        use ErrorKind::{Destination, Refused, Source};
        let src = self.dev.clone();
        let sb = self.bdf;
        let serr = |step: &str| {
            let step = format!("SRC {sb}: {step}");
            move |e: ivf_vfio::Error| MigrateError::vfio(Source, step, &e)
        };
        let derr = |kind: ErrorKind, step: &str| {
            let step = format!("DST {dst_bdf}: {step}");
            move |e: ivf_vfio::Error| MigrateError::vfio(kind, step, &e)
        };
        let t_start = Instant::now();
        let range = (IOVA_BASE, MEM_SIZE as u64);
        // No device dirty tracking on this VF (mode none, or a kernel
        // without iova_bitmap, as Debian's): every page counts as dirty in
        // every round, as a VMM without dirty tracking copies.
        let ps = match src.log_start(&[range], PAGE_SIZE as u64) {
            Ok(ps) => Some(ps),
            Err(e) if e.errno() == Some(libc::ENOTTY) => None,
            Err(e) => return Err(serr("DMA logging start")(e)),
        };
        let device_dirty = |step: &str| -> Result<BTreeSet<usize>, MigrateError> {
            match ps {
                Some(ps) => {
                    let bitmap = src.log_report(range.0, range.1, ps).map_err(serr(step))?;
                    Ok(report_pages(&bitmap, ps).into_iter().collect())
                }
                None => Ok((0..MEM_PAGES).collect()),
            }
        };
        let mut save = src
            .set_mig_state(mig::PRE_COPY)
            .map_err(serr("RUNNING -> PRE_COPY"))?
            .ok_or_else(|| MigrateError::new(Source, "SRC PRE_COPY", "no data fd"))?;
        let mut initial = Vec::new();
        read_data(&mut save, &mut initial).map_err(serr("reading the initial bytes"))?;
        let initial_bytes = initial.len() as u64;
        let mut to_dst = initial.clone();
        // The compatibility frame with one header field forged, resealed:
        // the destination must refuse it on the header alone.
        let forged: Option<fn(&mut stream::Header)> = match opts.inject {
            Inject::FutureVersion => Some(|h| h.major = stream::MAJOR + 1),
            Inject::WrongFamily => Some(|h| h.family = ivf_common::ids::Family::Ixgbe as u8),
            _ => None,
        };
        if let (Some(edit), Ok(mut h)) = (forged, stream::parse_header(&to_dst)) {
            edit(&mut h);
            h.write_into(&mut to_dst);
            stream::reseal(&mut to_dst);
        }
        let mut resume = dst
            .set_mig_state(mig::RESUMING)
            .map_err(derr(Destination, "-> RESUMING"))?
            .ok_or_else(|| MigrateError::new(Destination, "DST RESUMING", "no data fd"))?;
        write_data(&mut resume, &to_dst)
            .map_err(derr(Refused, "RESUMING refused the compatibility frame"))?;
        let mut device_bytes = initial_bytes;

        // Pre-copy rounds.
        let mut shadow = vec![0u8; MEM_SIZE];
        let mut rounds: Vec<Round> = Vec::new();
        let mut memory_bytes = 0u64;
        loop {
            let n = rounds.len() as u32;
            if n > 0 {
                std::thread::sleep(opts.round_interval);
            }
            if opts.inject == Inject::ResetSource(n) {
                src.reset().map_err(serr("injected reset"))?;
            }
            let (pages, device_pages, cpu_pages) = {
                let mut guard = self.shared.guest.lock().unwrap();
                let g = guard.as_mut().expect("a guest");
                let reported = device_dirty(&format!("dirty report of round {n}"))?;
                let cpu = g.take_cpu_dirty();
                let (dev_n, cpu_n) = (reported.len(), cpu.len());
                let pages: BTreeSet<usize> = if n == 0 {
                    (0..MEM_PAGES).collect()
                } else {
                    reported.into_iter().chain(cpu).collect()
                };
                copy_pages(&mut shadow, g.memory(), &pages);
                (pages, dev_n, cpu_n)
            };
            let state = src
                .mig_state()
                .map_err(serr(&format!("state in round {n}")))?;
            if state != mig::PRE_COPY {
                return Err(MigrateError::new(
                    Source,
                    format!("SRC {sb}: pre-copy round {n}"),
                    format!(
                        "the source left PRE_COPY (it is {}): it was reset",
                        mig::name(state)
                    ),
                ));
            }
            let mut more = Vec::new();
            read_data(&mut save, &mut more)
                .map_err(serr(&format!("pre-copy data of round {n}")))?;
            precopy_info(&save)
                .map_err(serr(&format!("VFIO_MIG_GET_PRECOPY_INFO in round {n}")))?;
            if !more.is_empty() {
                write_data(&mut resume, &more)
                    .map_err(derr(Refused, "RESUMING refused pre-copy data"))?;
            }
            device_bytes += more.len() as u64;
            let bytes = (pages.len() * PAGE_SIZE) as u64;
            memory_bytes += bytes;
            let r = Round {
                round: n,
                dirty_pages: pages.len(),
                device_pages,
                cpu_pages,
                bytes_copied: bytes,
                remaining_bytes: if n == 0 { 0 } else { bytes },
                device_bytes: more.len() as u64,
            };
            progress(&r);
            rounds.push(r);
            if n > 0 && (pages.len() <= opts.threshold_pages || n >= opts.max_rounds) {
                break;
            }
        }
        let precopy_us = us(t_start.elapsed());

        // Switchover: the vCPU stops.
        let t0 = Instant::now();
        self.shared.paused.store(true, Ordering::Relaxed);
        let mut guard = self.shared.guest.lock().unwrap();
        src.set_mig_state(mig::PRE_COPY_P2P)
            .map_err(serr("PRE_COPY -> PRE_COPY_P2P (quiesce)"))?;
        let t1 = Instant::now();
        if let Some(f) = src
            .set_mig_state(mig::STOP_COPY)
            .map_err(serr("PRE_COPY_P2P -> STOP_COPY (save)"))?
        {
            save = f;
        }
        let mut rest = Vec::new();
        let eof = read_data(&mut save, &mut rest).map_err(serr("reading the device state"))?;
        if !eof {
            return Err(MigrateError::new(
                Source,
                format!("SRC {sb}: STOP_COPY data"),
                "no end of data in STOP_COPY",
            ));
        }
        let t2 = Instant::now();
        let (final_pages, identical) = {
            let g = guard.as_mut().expect("a guest");
            let pages: BTreeSet<usize> = device_dirty("last dirty report")?
                .into_iter()
                .chain(g.take_cpu_dirty())
                .collect();
            copy_pages(&mut shadow, g.memory(), &pages);
            (pages.len(), shadow[..] == g.memory()[..])
        };
        memory_bytes += (final_pages * PAGE_SIZE) as u64;
        write_data(&mut resume, &rest)
            .map_err(derr(Refused, "RESUMING refused the device state"))?;
        device_bytes += rest.len() as u64;
        let t3 = Instant::now();
        if !identical {
            let g = guard.as_ref().expect("a guest");
            let differ: Vec<usize> = (0..MEM_PAGES)
                .filter(|p| {
                    let r = p * PAGE_SIZE..(p + 1) * PAGE_SIZE;
                    shadow[r.clone()] != g.memory()[r]
                })
                .collect();
            return Err(MigrateError::new(
                ErrorKind::Verify,
                "memory copy",
                format!("the destination's copy differs from the source's memory in pages {differ:?}: written but neither reported nor CPU-dirty"),
            ));
        }
        let snap = {
            let g = guard.as_ref().expect("a guest");
            GuestSnapshot::of(g.state(), g.tally())
        };
        dst.set_mig_state(mig::STOP)
            .map_err(derr(Refused, "RESUMING -> STOP (load)"))?;
        let t4 = Instant::now();
        let g = Guest::adopt_shared(dst.clone(), &shadow).map_err(|e| {
            MigrateError::new(
                Destination,
                format!("DST {dst_bdf}: adopting the guest"),
                e.to_string(),
            )
        })?;
        dst.set_mig_state(mig::RUNNING)
            .map_err(derr(Destination, "STOP -> RUNNING"))?;
        // Committed: the vCPU continues on the destination.
        let old = guard.replace(g);
        self.shared.paused.store(false, Ordering::Relaxed);
        drop(guard);
        let t5 = Instant::now();
        self.dev = dst.clone();
        self.bdf = dst_bdf;
        // The source goes away, as QEMU closes it: unmapped, logging off,
        // closed (which resets it, so the PF forgets its filters).
        drop(old);
        let _ = src.log_stop();
        drop(save);
        drop(resume);
        drop(src);
        let release_us = us(t5.elapsed());
        let downtime = Downtime {
            quiesce_us: us(t1 - t0),
            save_us: us(t2 - t1),
            transfer_us: us(t3 - t2),
            load_us: us(t4 - t3),
            resume_us: us(t5 - t4),
            total_us: us(t5 - t0),
        };
        Ok(Report {
            src: sb.to_string(),
            dst: dst_bdf.to_string(),
            rounds,
            final_pages,
            memory_bytes,
            device_bytes,
            initial_bytes,
            precopy_us,
            downtime,
            release_us,
            memory_identical: identical,
            guest_at_switchover: snap,
        })
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_log_counts_gaps_duplicates_and_corruption() {
        let mut l = SeqLog::default();
        for s in [5, 6, 9, 9, 7, 10] {
            l.record(s, true);
        }
        l.record(11, false);
        assert_eq!(
            (l.received, l.lost, l.duplicate, l.corrupt, l.next),
            (4, 2, 2, 1, 11)
        );
        assert!(!l.clean());
    }

    #[test]
    fn report_pages_clip_to_the_memory() {
        let mut bm = vec![0u64; 2];
        bm[0] = 0b11;
        bm[1] = 1 << 63;
        assert_eq!(report_pages(&bm, 4096), [0, 1, 127].into_iter().collect());
        assert_eq!(
            report_pages(&[0b10], 8192),
            [2, 3].into_iter().collect::<BTreeSet<_>>()
        );
    }
}
