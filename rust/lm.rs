// SPDX-License-Identifier: GPL-2.0

//! Live migration: the VFIO migration FSM of one VF and its data files.
//!
//! Every single-step arc that `vfio_mig_get_next_state()` produces for
//! STOP_COPY | P2P | PRE_COPY is one arm of [`step`]. The data file of a save
//! carries a compatibility frame (PRE_COPY's initial bytes) and, at
//! STOP_COPY, the state frame; a resume file checks every frame as it is
//! written, so a bad stream is refused at `write()` before anything touches
//! the device, and loads the state frame at RESUMING -> STOP.
//!
//! Locking: the device's `mig` mutex, then a file's own mutex. A file never
//! touches the device, so it may outlive it. Resets (FLR, VFIO_DEVICE_RESET)
//! arrive in `reset_done`, which cannot take the state mutex (the reset path
//! may hold locks that its holders take); it sets `reset_pending`, which
//! every entry applies first under the mutex: state RUNNING, files ended.

use core::sync::atomic::{AtomicBool, Ordering};

use kernel::device::Device;
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::sync::poll::{PollCondVar, PollTable};
use kernel::sync::Mutex;
use kernel::types::ForeignOwnable;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::common::bytes::copy_into;
use crate::common::hal::{self, QuiesceRecord};
use crate::common::ids::VfDevice;
use crate::common::mbx;
use crate::common::regs::{regmap, RegMap};
use crate::common::state::{
    self, decode_frame, header_for, write_compat_frame, write_state_frame, DeviceShape,
    FrameSequence, COMPAT_FRAME_LEN, MAX_FRAME_LEN,
};
use crate::common::stream::{self, DeviceCaps, StreamError};
use crate::mmio::LockedBar0;
use crate::trap::{self, PfState};
use crate::vfio::bindings::{self, vfio_device_mig_state as MigState};
use crate::vfio::vfio_pci_core_device;

pub(crate) const ERROR: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR;
pub(crate) const STOP: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP;
pub(crate) const RUNNING: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING;
const STOP_COPY: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY;
const RESUMING: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING;
const RUNNING_P2P: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P;
const PRE_COPY: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY;
const PRE_COPY_P2P: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P;

/// Shows a shared-crate error (core `Display`) in kernel messages.
struct Msg<T>(T);

impl<T: core::fmt::Display> kernel::fmt::Display for Msg<T> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

/// Migration flags this driver offers.
pub(crate) const MIGRATION_FLAGS: u32 = bindings::VFIO_MIGRATION_STOP_COPY
    | bindings::VFIO_MIGRATION_P2P
    | bindings::VFIO_MIGRATION_PRE_COPY;

/// `VFIO_MIG_GET_PRECOPY_INFO`, computed by a C macro (shim.h).
const VFIO_MIG_GET_PRECOPY_INFO: u32 = bindings::ivf_uapi_IVF_VFIO_MIG_GET_PRECOPY_INFO;

/// Most bytes a resume file accepts: a few frames, far above any real stream.
const MAX_RESUME_LEN: usize = 4 * MAX_FRAME_LEN;

/// Whether a file saves (read side) or resumes (write side).
#[derive(Copy, Clone, PartialEq, Eq)]
enum Kind {
    Save,
    Resume,
}

/// The contents of a data file.
struct FileData {
    kind: Kind,
    buf: KVec<u8>,
    /// Save: bytes read so far. Resume: bytes validated as whole frames.
    pos: usize,
    /// Save: bytes of the PRE_COPY initial data.
    initial_len: usize,
    /// Save: the state frame is in (STOP_COPY): end of data is EOF, not ENOMSG.
    complete: bool,
    /// Resume: what the device accepts.
    caps: DeviceCaps,
    /// Resume: the frames accepted so far (one compatibility frame, then
    /// the state frame), each of this device's shape.
    seq: FrameSequence,
    /// Resume: the first rejection, sticky.
    error: Option<StreamError>,
    /// The VF's device, so the kernel log names the VF. A counted
    /// reference: the file may outlive the open and even the binding.
    dev: ARef<Device>,
}

/// A migration data file (`file->private_data`).
#[pin_data]
pub(crate) struct MigFile {
    /// The FSM left the file's state: every call fails with ENODEV. Atomic,
    /// so ending a file never takes its mutex: a reset ends files from
    /// `reset_done`, under vfio's memory_lock, while a reader holds the
    /// mutex across copy_to_user, which may fault on a BAR mapping and so
    /// take memory_lock (a cycle lockdep reports).
    disabled: AtomicBool,
    #[pin]
    data: Mutex<FileData>,
    /// Save files: pollers wait here for the STOP_COPY data or the end.
    #[pin]
    readable: PollCondVar,
}

/// The device's reference to one of its data files.
struct FileRef {
    filp: *mut bindings::file,
    migf: *const MigFile,
}

impl FileRef {
    fn migf(&self) -> &MigFile {
        // SAFETY: we hold a reference on `filp`, so its private data, the
        // `MigFile`, is alive until our `fput`.
        unsafe { &*self.migf }
    }
}

impl Drop for FileRef {
    /// Ends the file for its user and drops the device's reference.
    fn drop(&mut self) {
        self.migf().disabled.store(true, Ordering::Release);
        self.migf().readable.notify_all();
        // SAFETY: the reference taken in `new_file` is ours to drop.
        unsafe { kernel::bindings::fput(self.filp.cast()) };
    }
}

/// Per-device migration state, under the device's `mig` mutex.
pub(crate) struct Migration {
    pub(crate) state: MigState,
    saving: Option<FileRef>,
    resuming: Option<FileRef>,
    /// What quiesce changed (enables, EIMS), until resume undoes it.
    record: Option<QuiesceRecord>,
}

impl Migration {
    pub(crate) const fn new() -> Self {
        Migration {
            state: RUNNING,
            saving: None,
            resuming: None,
            record: None,
        }
    }

    /// Back to RUNNING with no transfer in progress (open, close, reset).
    pub(crate) fn reset(&mut self) {
        self.saving = None;
        self.resuming = None;
        self.record = None;
        self.state = RUNNING;
    }
}

/// What the FSM needs of the device it runs for.
pub(crate) struct DevCtx<'a> {
    pub(crate) core: *mut vfio_pci_core_device,
    pub(crate) vf: &'static VfDevice,
    pub(crate) reset_pending: &'a AtomicBool,
    pub(crate) pf: &'a Mutex<PfState>,
    pub(crate) reset_gen: &'a core::sync::atomic::AtomicU64,
}

impl DevCtx<'_> {
    fn map(&self) -> &'static RegMap {
        regmap(self.vf.family)
    }

    fn pdev(&self) -> *mut bindings::pci_dev {
        // SAFETY: `core` is a live, enabled device (the FSM runs between
        // open and close).
        unsafe { (*self.core).pdev }
    }

    fn dev(&self) -> &kernel::device::Device {
        // SAFETY: the PCI device outlives its vfio device.
        unsafe { kernel::device::Device::from_raw(&raw mut (*self.pdev()).dev) }
    }

    /// BAR0 for one sequence, with memory_lock held: a reset waits for it.
    fn bar0(&self) -> Result<LockedBar0> {
        // SAFETY: see `pdev`.
        unsafe { LockedBar0::lock(self.core) }
    }

    fn header(&self) -> stream::Header {
        // SAFETY: see `pdev`.
        let (vendor, device, rev) = unsafe {
            let p = self.pdev();
            ((*p).vendor, (*p).device, (*p).revision)
        };
        let mut h = header_for(self.vf.family, self.map(), vendor, device, rev);
        if crate::module_parameters::fault_inject_future_stream.value() {
            // What a newer driver would write: any destination refuses it.
            h.major += 1;
        }
        h
    }

    fn caps(&self) -> DeviceCaps {
        let h = self.header();
        DeviceCaps {
            family: self.vf.family,
            vendor: h.vendor,
            device: h.device,
            revision: h.revision,
            max_queue_pairs: h.queue_pairs,
            features: 0,
        }
    }
}

/// Applies a reset that arrived while we could not take the mutex.
pub(crate) fn apply_pending_reset(ctx: &DevCtx<'_>, mig: &mut Migration) {
    if ctx.reset_pending.swap(false, Ordering::AcqRel) {
        mig.reset();
    }
}

fn new_file(ctx: &DevCtx<'_>, kind: Kind, initial: &[u8], complete: bool) -> Result<FileRef> {
    let mut buf = KVec::with_capacity(MAX_FRAME_LEN + COMPAT_FRAME_LEN, GFP_KERNEL)?;
    buf.extend_from_slice(initial, GFP_KERNEL)?;
    let migf = KBox::pin_init(
        pin_init!(MigFile {
            disabled: AtomicBool::new(false),
            readable <- kernel::new_poll_condvar!("intel_vf_vfio_pci::readable"),
            data <- kernel::new_mutex!(FileData {
                kind,
                buf,
                pos: 0,
                initial_len: initial.len(),
                complete,
                caps: ctx.caps(),
                seq: FrameSequence::new(DeviceShape::of(ctx.map())),
                error: None,
                dev: ctx.dev().into(),
            }),
        }),
        GFP_KERNEL,
    )?;
    let raw = migf.into_foreign();
    // SAFETY: `raw` becomes the file's private data; on failure we take it back.
    let filp = unsafe { bindings::ivf_mig_file_create(raw.cast(), kind == Kind::Save) };
    if let Err(e) = crate::vfio::from_err_ptr(filp) {
        // SAFETY: the file was not created, so `raw` is still only ours.
        drop(unsafe { <Pin<KBox<MigFile>> as ForeignOwnable>::from_foreign(raw) });
        return Err(e);
    }
    // SAFETY: a second reference for the device; the first goes to the user.
    unsafe { bindings::ivf_get_file(filp) };
    Ok(FileRef {
        filp,
        migf: raw.cast_const().cast(),
    })
}

fn quiesce(ctx: &DevCtx<'_>, mig: &mut Migration) -> Result {
    if crate::module_parameters::fault_inject_quiesce.value() {
        dev_err!(
            ctx.dev(),
            "quiesce failed: fault injected (fault_inject_quiesce=1)\n"
        );
        return Err(ETIMEDOUT);
    }
    let mut bar = ctx.bar0()?;
    match hal::quiesce(&mut *bar, ctx.map()) {
        Ok(rec) => {
            mig.record = Some(rec);
            Ok(())
        }
        Err(e) => {
            dev_err!(ctx.dev(), "quiesce failed: {}\n", Msg(e));
            Err(Error::from_errno(-e.errno()))
        }
    }
}

fn resume(ctx: &DevCtx<'_>, mig: &mut Migration) -> Result {
    let Some(rec) = mig.record.take() else {
        return Ok(());
    };
    let mut bar = ctx.bar0()?;
    hal::resume(&mut *bar, ctx.map(), &rec).map_err(|e| {
        dev_err!(ctx.dev(), "resume failed: {}\n", Msg(e));
        Error::from_errno(-e.errno())
    })
}

/// Builds the state frame of the quiesced device into `out`.
fn save_state(ctx: &DevCtx<'_>, mig: &mut Migration, out: &mut KVec<u8>) -> Result {
    let rec = mig.record.ok_or(EINVAL)?;
    let mut bar = ctx.bar0()?;
    let st = hal::save(&mut *bar, ctx.map(), &rec);
    let c = bar.counts;
    // memory_lock before the PF mutex and rtnl, and not across them.
    drop(bar);
    dev_dbg!(
        ctx.dev(),
        "save: {} MMIO reads, {} writes\n",
        c.reads,
        c.writes
    );
    let pf = trap::lock_pf(ctx.pf, ctx.reset_gen);
    if pf.snoop.in_flight() {
        // Documented rule: a request whose reply the guest has not read is
        // not in the log; the guest's driver times it out and sends it again.
        dev_info!(
            ctx.dev(),
            "a mailbox request was in flight at stop: not carried\n"
        );
    }
    let carried = state::PfState {
        mbx: Some(pf.snoop.log),
        admin: None,
    };
    drop(pf);
    // rtnl is taken outside the PF-channel mutex (mig -> rtnl only).
    let carried = state::PfState {
        admin: crate::pf_admin::get(ctx.pdev())?,
        ..carried
    };
    let start = out.len();
    out.resize(start + MAX_FRAME_LEN, 0, GFP_KERNEL)?;
    let n = write_state_frame(&mut out[start..], ctx.header(), ctx.map(), &st, &carried)
        .map_err(|e| Error::from_errno(-e.errno()))?;
    out.truncate(start + n);
    Ok(())
}

fn compat_frame(ctx: &DevCtx<'_>) -> Result<([u8; COMPAT_FRAME_LEN], usize)> {
    let mut f = [0u8; COMPAT_FRAME_LEN];
    let n = write_compat_frame(&mut f, ctx.header(), ctx.map())
        .map_err(|e| Error::from_errno(-e.errno()))?;
    Ok((f, n))
}

/// Why a load failed.
enum LoadFailure {
    /// Refused before anything was changed: the FSM stays in RESUMING.
    Refused(Error),
    /// The PF or the device had been changed: the device goes to ERROR,
    /// which only a reset leaves (a retry must not replay on top).
    Failed(Error),
}

/// RESUMING -> STOP: decode the state frame written and load it.
///
/// Everything is checked before anything is changed: the frames, the
/// registers' values, and what the stream's PF settings may change here
/// (`pf_admin::plan`). Only then the PF's settings, the mailbox replay and
/// the registers; a failure among those undoes the settings and leaves the
/// device in ERROR.
fn load(ctx: &DevCtx<'_>, mig: &mut Migration) -> core::result::Result<(), LoadFailure> {
    use LoadFailure::{Failed, Refused};
    let file = mig.resuming.as_ref().ok_or(Refused(EINVAL))?;
    let data = file.migf().data.lock();
    if let Some(e) = data.error {
        return Err(Refused(Error::from_errno(-e.errno())));
    }
    // Frames were validated as they arrived; bytes past `pos` are a frame
    // that never completed.
    if data.pos != data.buf.len() {
        let e = StreamError::Truncated {
            need: stream::parse_header(&data.buf[data.pos..])
                .map(|h| h.total_len as usize)
                .unwrap_or(stream::HEADER_LEN),
            have: data.buf.len() - data.pos,
        };
        dev_err!(ctx.dev(), "resume: {}\n", Msg(e));
        return Err(Refused(Error::from_errno(-e.errno())));
    }
    // Every frame was accepted in order; the stream must also be complete:
    // its compatibility frame, then its state frame (ENODATA otherwise).
    if let Err(e) = data.seq.finish() {
        dev_err!(ctx.dev(), "resume: {}\n", Msg(e));
        return Err(Refused(Error::from_errno(-e.errno())));
    }
    // The one state frame (the second frame).
    let mut at = 0;
    let mut last = None;
    let mut log = state::PfState::default();
    while at < data.buf.len() {
        let (frame, len) = state::next_frame(&data.buf[at..])
            .map_err(|e| Refused(Error::from_errno(-e.errno())))?;
        if frame.state.is_some() {
            last = frame.state;
            log = frame.pf;
        }
        at += len;
    }
    drop(data);
    let Some(st) = last else {
        dev_err!(ctx.dev(), "resume: the stream has no state frame\n");
        return Err(Refused(ENODATA));
    };
    hal::validate(&st, ctx.map()).map_err(|e| {
        dev_err!(ctx.dev(), "resume: {}\n", Msg(e));
        Refused(Error::from_errno(-e.errno()))
    })?;
    let admin = match &log.admin {
        Some(admin) => Some(
            crate::pf_admin::plan(
                ctx.dev(),
                ctx.pdev(),
                admin,
                log.mbx.and_then(|m| m.mac),
                crate::module_parameters::admin_settings_owned_by_destination.value(),
            )
            .map_err(Refused)?,
        ),
        None => None,
    };
    // The PF first: the administrator's settings (under rtnl, so before
    // memory_lock: mig -> rtnl only), then the VF's own requests, replayed
    // through its mailbox so the PF driver re-applies its filters; then the
    // registers.
    if let Some(plan) = &admin {
        plan.apply(ctx.dev(), ctx.pdev()).map_err(Failed)?;
    }
    if let Err(e) = load_device(ctx, &st, log.mbx.as_ref()) {
        if let Some(plan) = &admin {
            plan.undo(ctx.dev(), ctx.pdev());
        }
        return Err(Failed(e));
    }
    mig.record = Some(st.record());
    Ok(())
}

/// The device part of a load, with memory_lock held: the mailbox replay,
/// then the registers.
fn load_device(ctx: &DevCtx<'_>, st: &hal::DeviceState, log: Option<&mbx::MbxLog>) -> Result {
    let mut bar = ctx.bar0()?;
    if let Some(log) = log {
        let (accepted, sent) =
            mbx::replay_log(&mut *bar, ctx.map(), ctx.vf.family, log).map_err(|e| {
                dev_err!(ctx.dev(), "PF replay failed: {}\n", Msg(e));
                Error::from_errno(-e.errno())
            })?;
        dev_dbg!(ctx.dev(), "PF replay: {} mailbox messages\n", sent);
        trap::lock_pf(ctx.pf, ctx.reset_gen).snoop.log = accepted;
    }
    let res = hal::load(&mut *bar, ctx.map(), st);
    let c = bar.counts;
    dev_dbg!(
        ctx.dev(),
        "load: {} MMIO reads, {} writes, {} polls\n",
        c.reads,
        c.writes,
        c.delays
    );
    res.map_err(|e| {
        dev_err!(ctx.dev(), "load failed: {}\n", Msg(e));
        Error::from_errno(-e.errno())
    })
}

/// One arc of the FSM. Returns the new data file, if the arc makes one.
fn step(ctx: &DevCtx<'_>, mig: &mut Migration, next: MigState) -> Result<Option<FileRef>> {
    let cur = mig.state;
    match (cur, next) {
        (RUNNING, RUNNING_P2P) | (PRE_COPY, PRE_COPY_P2P) => quiesce(ctx, mig).map(|()| None),
        (RUNNING_P2P, RUNNING) | (PRE_COPY_P2P, PRE_COPY) => resume(ctx, mig).map(|()| None),
        (RUNNING_P2P, STOP) | (STOP, RUNNING_P2P) => Ok(None),
        (RUNNING, PRE_COPY) | (RUNNING_P2P, PRE_COPY_P2P) => {
            let (f, n) = compat_frame(ctx)?;
            new_file(ctx, Kind::Save, &f[..n], false).map(Some)
        }
        (PRE_COPY, RUNNING) | (PRE_COPY_P2P, RUNNING_P2P) | (STOP_COPY, STOP) => {
            mig.saving = None;
            Ok(None)
        }
        (PRE_COPY_P2P, STOP_COPY) => {
            let mut frame = KVec::with_capacity(MAX_FRAME_LEN, GFP_KERNEL)?;
            save_state(ctx, mig, &mut frame)?;
            let file = mig.saving.as_ref().ok_or(EINVAL)?;
            let mut data = file.migf().data.lock();
            data.buf.extend_from_slice(&frame, GFP_KERNEL)?;
            data.complete = true;
            drop(data);
            file.migf().readable.notify_all();
            Ok(None)
        }
        (STOP, STOP_COPY) => {
            let (f, n) = compat_frame(ctx)?;
            let mut init = KVec::with_capacity(MAX_FRAME_LEN + n, GFP_KERNEL)?;
            init.extend_from_slice(&f[..n], GFP_KERNEL)?;
            save_state(ctx, mig, &mut init)?;
            new_file(ctx, Kind::Save, &init, true).map(Some)
        }
        (STOP, RESUMING) => new_file(ctx, Kind::Resume, &[], false).map(Some),
        (RESUMING, STOP) => match load(ctx, mig) {
            Ok(()) => {
                mig.resuming = None;
                Ok(None)
            }
            Err(LoadFailure::Refused(e)) => Err(e),
            Err(LoadFailure::Failed(e)) => {
                mig.state = ERROR;
                Err(e)
            }
        },
        _ => {
            dev_err!(ctx.dev(), "unexpected migration arc {} -> {}\n", cur, next);
            Err(EINVAL)
        }
    }
}

/// `migration_set_state` under the device's mutex: walk the FSM to `new`.
pub(crate) fn set_state(
    ctx: &DevCtx<'_>,
    mig: &mut Migration,
    vdev: *mut bindings::vfio_device,
    new: MigState,
) -> Result<*mut bindings::file> {
    apply_pending_reset(ctx, mig);
    if mig.state == ERROR {
        // Only a reset leaves ERROR (and ERROR is never a target); the core
        // WARNs when asked for a path from ERROR, so refuse here.
        return Err(EINVAL);
    }
    // A reset that lands while the arcs run (it waits for their BAR0
    // sequences, then finds `mig` held) is seen here after them.
    let gen = ctx.reset_gen.load(Ordering::Acquire);
    let mut out: *mut bindings::file = core::ptr::null_mut();
    while mig.state != new {
        let mut next: MigState = ERROR;
        // SAFETY: `vdev` is our open device; the core validates both states.
        kernel::error::to_result(unsafe {
            bindings::vfio_mig_get_next_state(vdev, mig.state, new, &mut next)
        })?;
        let file = match step(ctx, mig, next) {
            Ok(f) => f,
            Err(e) => {
                // A failed device sequence leaves the device unknown: ERROR,
                // from which only a reset recovers. A refused stream touched
                // nothing and keeps the state (a failed load has set ERROR).
                if mig.state != RESUMING {
                    mig.state = ERROR;
                }
                return Err(e);
            }
        };
        mig.state = next;
        if let Some(f) = file {
            let filp = f.filp;
            match next {
                RESUMING => mig.resuming = Some(f),
                _ => mig.saving = Some(f),
            }
            // The user gets the reference the file was created with.
            out = filp;
        }
    }
    if ctx.reset_gen.load(Ordering::Acquire) != gen {
        // The device the arcs ran on is gone: never report success on it.
        apply_pending_reset(ctx, mig);
        if !out.is_null() {
            // SAFETY: the user's reference, which the user will never get.
            unsafe { kernel::bindings::fput(out.cast()) };
        }
        dev_info!(
            ctx.dev(),
            "the device was reset during the change to state {}: it is RUNNING\n",
            new
        );
        return Err(EIO);
    }
    Ok(out)
}

/// `migration_get_data_size`: the STOP_COPY data of this device.
pub(crate) fn data_size(ctx: &DevCtx<'_>) -> usize {
    COMPAT_FRAME_LEN + state::state_frame_len(ctx.map())
}

// ---- the data file's operations (called from the fops table in shim.c) ----

/// # Safety
///
/// `filp` must be one of our migration files.
unsafe fn file_data<'a>(filp: *mut bindings::file) -> Pin<&'a MigFile> {
    // SAFETY: per the contract, private_data is our `Pin<KBox<MigFile>>`,
    // alive until `release`, which cannot run during another file op.
    unsafe { <Pin<KBox<MigFile>> as ForeignOwnable>::borrow((*filp).private_data.cast()) }
}

/// The data of a file op's file, locked, unless the call must fail first
/// (a seek position on our stream file: ESPIPE; a disabled file: ENODEV).
///
/// # Safety
///
/// `filp` must be one of our migration files, inside a file op.
unsafe fn lock_data<'a>(
    filp: *mut bindings::file,
    pos: *mut bindings::loff_t,
) -> Result<kernel::sync::MutexGuard<'a, FileData>, isize> {
    if !pos.is_null() {
        return Err(ESPIPE.to_errno() as isize);
    }
    // SAFETY: per the function's contract.
    let migf = unsafe { file_data(filp) }.get_ref();
    let d = migf.data.lock();
    if migf.disabled.load(Ordering::Acquire) {
        return Err(ENODEV.to_errno() as isize);
    }
    Ok(d)
}

/// `read` of a save file.
///
/// # Safety
///
/// Called by the VFS for one of our save files.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_mig_read(
    filp: *mut bindings::file,
    ubuf: *mut u8,
    len: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: called by the VFS for our save file.
    let mut d = match unsafe { lock_data(filp, pos) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    let left = d.buf.len() - d.pos;
    if left == 0 {
        // PRE_COPY has a temporary end of data; STOP_COPY a permanent one.
        return if d.complete {
            0
        } else {
            ENOMSG.to_errno() as isize
        };
    }
    if len == 0 {
        // 0 would read as the end of the stream while data is waiting.
        return EINVAL.to_errno() as isize;
    }
    let n = left.min(len);
    let mut w = UserSlice::new(UserPtr::from_ptr(ubuf.cast()), n).writer();
    if let Err(e) = w.write_slice(&d.buf[d.pos..d.pos + n]) {
        return e.to_errno() as isize;
    }
    d.pos += n;
    n as isize
}

/// Checks the frames completed by a write; returns the first rejection.
fn check_frames(d: &mut FileData) -> Result<(), StreamError> {
    loop {
        let rest = &d.buf[d.pos..];
        if rest.len() < stream::HEADER_LEN {
            // Magic is checked as soon as its bytes are in.
            return match stream::parse_header(rest) {
                Err(StreamError::BadMagic) => Err(StreamError::BadMagic),
                _ => Ok(()),
            };
        }
        let h = stream::parse_header(rest)?;
        // The destination can refuse on the header alone, before the source stops.
        stream::check_compat(&h, &d.caps)?;
        let total = h.total_len as usize;
        if rest.len() < total {
            return Ok(());
        }
        let frame = decode_frame(&rest[..total])?;
        // Its place in the stream, and the device's shape.
        d.seq.accept(&frame)?;
        d.pos += total;
    }
}

/// `write` of a resume file.
///
/// # Safety
///
/// Called by the VFS for one of our resume files.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_mig_write(
    filp: *mut bindings::file,
    ubuf: *const u8,
    len: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: called by the VFS for our resume file.
    let mut d = match unsafe { lock_data(filp, pos) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    if let Some(e) = d.error {
        return -(e.errno() as isize);
    }
    if d.buf.len() + len > MAX_RESUME_LEN {
        let e = StreamError::TooLarge {
            len: d.buf.len() + len,
            max: MAX_RESUME_LEN,
        };
        dev_err!(d.dev, "resume: {}\n", Msg(e));
        d.error = Some(e);
        return -(e.errno() as isize);
    }
    let start = d.buf.len();
    if d.buf.resize(start + len, 0, GFP_KERNEL).is_err() {
        return ENOMEM.to_errno() as isize;
    }
    let mut r = UserSlice::new(UserPtr::from_ptr(ubuf.cast_mut().cast()), len).reader();
    if let Err(e) = r.read_slice(&mut d.buf[start..]) {
        d.buf.truncate(start);
        return e.to_errno() as isize;
    }
    if let Err(e) = check_frames(&mut d) {
        dev_err!(d.dev, "resume stream refused: {}\n", Msg(e));
        d.error = Some(e);
        return -(e.errno() as isize);
    }
    len as isize
}

/// `unlocked_ioctl` of a save file: `VFIO_MIG_GET_PRECOPY_INFO`.
///
/// # Safety
///
/// Called by the VFS for one of our save files.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_mig_ioctl(
    filp: *mut bindings::file,
    cmd: u32,
    arg: usize,
) -> isize {
    if cmd != VFIO_MIG_GET_PRECOPY_INFO {
        return ENOTTY.to_errno() as isize;
    }
    // SAFETY: per the function's contract.
    let migf = unsafe { file_data(filp) };
    let d = migf.data.lock();
    if migf.disabled.load(Ordering::Acquire) || d.kind != Kind::Save || d.complete {
        // Only valid in PRE_COPY states.
        return EINVAL.to_errno() as isize;
    }
    let (r, mut w) = UserSlice::new(UserPtr::from_addr(arg), 24).reader_writer();
    let mut head = [0u8; 8];
    let mut r = r;
    if let Err(e) = r.read_slice(&mut head) {
        return e.to_errno() as isize;
    }
    let argsz = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if argsz < 24 {
        return EINVAL.to_errno() as isize;
    }
    let initial = d.initial_len.saturating_sub(d.pos) as u64;
    let mut out = [0u8; 24];
    copy_into(&mut out[..4], &argsz.to_le_bytes());
    copy_into(&mut out[8..16], &initial.to_le_bytes());
    // dirty_bytes: device state changes only at STOP_COPY, so always 0.
    match w.write_slice(&out) {
        Ok(()) => 0,
        Err(e) => e.to_errno() as isize,
    }
}

/// `poll` of a save file: readable while data waits (or at the end, where
/// `read` returns 0); an ended file (reset, close) is an error. In PRE_COPY
/// with everything read, a poller sleeps until STOP_COPY adds the state.
///
/// # Safety
///
/// Called by the VFS for one of our save files.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_mig_poll(
    filp: *mut bindings::file,
    table: *mut bindings::poll_table,
) -> kernel::ffi::c_uint {
    // SAFETY: per the function's contract.
    let migf = unsafe { file_data(filp) }.get_ref();
    // SAFETY: the VFS passes a valid (or null) table and a live file for
    // the duration of the call.
    let (table, file) = unsafe {
        (
            PollTable::from_raw(table),
            kernel::fs::File::from_raw_file(filp),
        )
    };
    table.register_wait(file, &migf.readable);
    if migf.disabled.load(Ordering::Acquire) {
        return bindings::ivf_uapi_IVF_EPOLLERR;
    }
    let d = migf.data.lock();
    if d.pos < d.buf.len() || d.complete {
        bindings::ivf_uapi_IVF_EPOLLIN | bindings::ivf_uapi_IVF_EPOLLRDNORM
    } else {
        0
    }
}

/// `release` of either file: frees its data.
///
/// # Safety
///
/// Called by the VFS once, when the last reference to the file goes.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_mig_release(
    _inode: *mut bindings::inode,
    filp: *mut bindings::file,
) -> kernel::ffi::c_int {
    // SAFETY: the last reference is gone: the box is ours again.
    drop(unsafe {
        <Pin<KBox<MigFile>> as ForeignOwnable>::from_foreign((*filp).private_data.cast())
    });
    0
}
