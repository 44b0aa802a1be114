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
//! touches the device, so it may outlive it. A reset or a change of user
//! ends the FSM's transfers and puts it back to RUNNING: that is
//! [`Migration`]'s catch-up (epoch.rs), run before anybody sees the state.

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::device::Device;
use kernel::fs::File;
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::sync::poll::{PollCondVar, PollTable};
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::time::{Instant, Monotonic};
use kernel::uaccess::{UserPtr, UserSlice};

use crate::common::announce::Arrival;
use crate::common::guest_cap;
use crate::common::hal::{self, QuiesceRecord};
use crate::common::mbx;
use crate::common::regs::RegMap;
use crate::common::state::{
    self, header_for, write_compat_frame, write_state_frame, DeviceShape, FrameSequence,
    COMPAT_FRAME_LEN, MAX_FRAME_LEN,
};
use crate::common::stream::{self, DeviceCaps, StreamError};
use crate::device::{IvfDevice, Step};
use crate::epoch::{Current, FollowsDevice, Since};
use crate::ffi::bindings;
use crate::ffi::fault::{self, Fault};
use crate::ffi::mig_file::{self, FileRef, UserFile};
use crate::log_limit::{user_line, vf_line, SHARED_LINES};
use crate::msg::{KernelError, Msg};
use crate::profile::{Part, Stopwatch};

/// A device migration state (`enum vfio_device_mig_state`).
pub(crate) type MigState = bindings::vfio_device_mig_state;

pub(crate) const ERROR: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR;
pub(crate) const STOP: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP;
pub(crate) const RUNNING: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING;
const STOP_COPY: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY;
const RESUMING: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING;
const RUNNING_P2P: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P;
const PRE_COPY: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY;
const PRE_COPY_P2P: MigState = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P;

/// Migration flags this driver offers.
pub(crate) const MIGRATION_FLAGS: u32 = bindings::VFIO_MIGRATION_STOP_COPY
    | bindings::VFIO_MIGRATION_P2P
    | bindings::VFIO_MIGRATION_PRE_COPY;

/// Most bytes a resume file accepts: a few frames, far above any real stream.
const MAX_RESUME_LEN: usize = 4 * MAX_FRAME_LEN;

/// Whether a file saves (read side) or resumes (write side).
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
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
    /// Counts the file among its device's live ones while it exists.
    _live: LiveFile,
}

/// Most migration files of one VF alive at once (QEMU holds one or two):
/// every STOP <-> STOP_COPY makes one, and a user that keeps their fds
/// would otherwise pin kernel memory without bound.
const MAX_LIVE_FILES: u32 = 16;

/// One file's place in its device's count (`Migration::live_files`),
/// given back when the file goes, whether or not the device still exists.
struct LiveFile(Arc<AtomicU32>);

impl Drop for LiveFile {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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

/// Per-device migration state, under the device's `mig` mutex.
pub(crate) struct Migration {
    pub(crate) state: MigState,
    saving: Option<FileRef>,
    resuming: Option<FileRef>,
    /// What quiesce changed (enables, EIMS), until resume undoes it.
    record: Option<QuiesceRecord>,
    /// A stream was loaded: the guest arrives when the VF next runs, and is
    /// announced as the PF's view read at the load says (so the resume takes
    /// no rtnl). Kept here so a reset or a new user forgets it.
    arrived: Option<Arrival>,
    /// How many of the VF's migration files live (made at the first file;
    /// kept across users, as their files may outlive an open).
    live_files: Option<Arc<AtomicU32>>,
}

impl Migration {
    pub(crate) const fn new() -> Self {
        Migration {
            state: RUNNING,
            saving: None,
            resuming: None,
            record: None,
            arrived: None,
            live_files: None,
        }
    }
}

impl Migration {
    /// The guest that was loaded arrives, as `arrival` says, when the VF
    /// next runs.
    pub(crate) fn expect_arrival(&mut self, arrival: Arrival) {
        self.arrived = Some(arrival);
    }

    /// The arrival a resume announces, if a load set one.
    pub(crate) fn take_arrival(&mut self) -> Option<Arrival> {
        self.arrived.take()
    }
}

impl FollowsDevice for Migration {
    type Ctx<'c> = ();

    /// A reset or a new user: back to RUNNING, every transfer ended (its
    /// files fail from now on), nothing quiesced. The only way out of ERROR.
    fn catch_up(&mut self, _since: Since, _ctx: ()) {
        let live_files = self.live_files.take();
        *self = Migration::new();
        self.live_files = live_files;
    }
}

impl IvfDevice {
    fn header(&self) -> stream::Header {
        let pci = self.core().pci();
        let mut h = header_for(
            self.family(),
            self.regmap(),
            pci.vendor_id().as_raw(),
            pci.device_id(),
            pci.revision_id(),
        );
        if fault::injected(Fault::FutureStream) {
            // What a newer driver would write: any destination refuses it.
            h.major += 1;
        }
        h
    }

    fn caps(&self) -> DeviceCaps {
        let h = self.header();
        DeviceCaps {
            family: self.family(),
            vendor: h.vendor,
            device: h.device,
            revision: h.revision,
            max_queue_pairs: h.queue_pairs,
            features: 0,
        }
    }
}

/// Takes a place among the VF's live migration files, if one is free.
fn take_live_file(ivf: &IvfDevice, mig: &mut Migration) -> Result<LiveFile> {
    let count = match &mig.live_files {
        Some(c) => c.clone(),
        None => {
            let c = Arc::new(AtomicU32::new(0), GFP_KERNEL_ACCOUNT)?;
            mig.live_files = Some(c.clone());
            c
        }
    };
    let taken = count.fetch_add(1, Ordering::AcqRel);
    let live = LiveFile(count);
    if taken >= MAX_LIVE_FILES {
        vf_line!(
            ivf,
            dev_err,
            "migration file refused: {} of the VF's files are still open (at most {}); close the old ones\n",
            taken,
            MAX_LIVE_FILES
        );
        return Err(EMFILE);
    }
    Ok(live)
}

// Buffers are charged to the user's memory cgroup (GFP_KERNEL_ACCOUNT):
// the user asks for them and holds them through its fds.
fn new_file(
    ivf: &IvfDevice,
    mig: &mut Migration,
    kind: Kind,
    initial: &[u8],
    complete: bool,
) -> Result<(FileRef, UserFile)> {
    let live = take_live_file(ivf, mig)?;
    let mut buf = KVec::with_capacity(MAX_FRAME_LEN + COMPAT_FRAME_LEN, GFP_KERNEL_ACCOUNT)?;
    buf.extend_from_slice(initial, GFP_KERNEL_ACCOUNT)?;
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
                caps: ivf.caps(),
                seq: FrameSequence::new(DeviceShape::of(ivf.regmap())),
                error: None,
                dev: ivf.dev().into(),
                _live: live,
            }),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    mig_file::create(migf, kind)
}

fn quiesce(ivf: &IvfDevice, mig: &mut Migration, sw: &mut Stopwatch) -> Result {
    if fault::injected(Fault::Quiesce) {
        vf_line!(
            ivf,
            dev_err,
            "quiesce failed: fault injected (fault_inject_quiesce)\n"
        );
        return Err(ETIMEDOUT);
    }
    let mut bar = ivf.core().bar0()?;
    sw.mark(Part::Bar);
    let res = hal::quiesce(&mut *bar, ivf.regmap());
    sw.mark(Part::Mmio);
    sw.mmio(bar.counts);
    match res {
        Ok(rec) => {
            mig.record = Some(rec);
            Ok(())
        }
        Err(e) => {
            vf_line!(ivf, dev_err, "quiesce failed: {}\n", Msg(e));
            Err(e.kernel_error())
        }
    }
}

fn resume(ivf: &IvfDevice, mig: &mut Migration, sw: &mut Stopwatch) -> Result {
    let Some(rec) = mig.record.take() else {
        return Ok(());
    };
    let mut bar = ivf.core().bar0()?;
    sw.mark(Part::Bar);
    let res = hal::resume(&mut *bar, ivf.regmap(), &rec);
    sw.mark(Part::Mmio);
    sw.mmio(bar.counts);
    res.map_err(|e| {
        vf_line!(ivf, dev_err, "resume failed: {}\n", Msg(e));
        e.kernel_error()
    })
}

/// Reads what the state frame of the quiesced device carries: its
/// registers and the PF's state for it.
fn read_state(
    ivf: &IvfDevice,
    mig: &mut Migration,
    sw: &mut Stopwatch,
) -> Result<(hal::DeviceState, state::PfState)> {
    let rec = mig.record.ok_or(EINVAL)?;
    let mut bar = ivf.core().bar0()?;
    sw.mark(Part::Bar);
    let st = hal::save(&mut *bar, ivf.regmap(), &rec);
    let c = bar.counts;
    sw.mmio(c);
    // memory_lock before the PF mutex and rtnl, and not across them.
    drop(bar);
    sw.mark(Part::Mmio);
    dev_dbg!(
        ivf.dev(),
        "save: {} MMIO reads, {} writes\n",
        c.reads,
        c.writes
    );
    let mut pf = ivf.pf_channel();
    if pf.snoop.in_flight() && !pf.in_flight_said {
        // Documented rule (pf-channel.rst): a request whose reply the guest
        // has not read is not in the log. Said once per open: a user can
        // save in a loop.
        pf.in_flight_said = true;
        vf_line!(
            ivf,
            dev_info,
            "a mailbox request was in flight at stop: not carried\n"
        );
    }
    let mbx = Some(pf.snoop.log);
    drop(pf);
    sw.mark(Part::PfLog);
    // rtnl is taken outside the PF-channel mutex (mig -> rtnl only). The
    // settings are read here, after the stop, because the administrator
    // may change them until then; reading them earlier would still need
    // this read to confirm them.
    let carried = state::PfState {
        mbx,
        admin: crate::pf_admin::get(ivf.core().pci())?,
    };
    sw.mark(Part::PfAdmin);
    Ok((st, carried))
}

/// Appends the state frame to `file`'s bytes, in the room its buffer was
/// made with (no allocation in the stop window), and wakes its reader.
fn publish_state(
    ivf: &IvfDevice,
    file: &FileRef,
    st: &hal::DeviceState,
    carried: &state::PfState,
    sw: &mut Stopwatch,
) -> Result {
    let mut data = file.migf().data.lock();
    let start = data.buf.len();
    data.buf
        .resize(start + MAX_FRAME_LEN, 0, GFP_KERNEL_ACCOUNT)?;
    let written = write_state_frame(
        &mut data.buf[start..],
        ivf.header(),
        ivf.regmap(),
        st,
        carried,
    );
    let n = match written {
        Ok(n) => n,
        Err(e) => {
            data.buf.truncate(start);
            return Err(e.kernel_error());
        }
    };
    data.buf.truncate(start + n);
    data.complete = true;
    drop(data);
    sw.mark(Part::Encode);
    file.migf().readable.notify_all();
    sw.mark(Part::Publish);
    Ok(())
}

fn compat_frame(ivf: &IvfDevice) -> Result<([u8; COMPAT_FRAME_LEN], usize)> {
    let mut f = [0u8; COMPAT_FRAME_LEN];
    let n = write_compat_frame(&mut f, ivf.header(), ivf.regmap()).map_err(|e| e.kernel_error())?;
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
fn load(
    ivf: &IvfDevice,
    mig: &mut Migration,
    sw: &mut Stopwatch,
) -> core::result::Result<u8, LoadFailure> {
    use LoadFailure::{Failed, Refused};
    let refuse = |e: StreamError| {
        vf_line!(ivf, dev_err, "resume: {}\n", Msg(e));
        Refused(e.kernel_error())
    };
    let file = mig.resuming.as_ref().ok_or(Refused(EINVAL))?;
    let data = file.migf().data.lock();
    if let Some(e) = data.error {
        return Err(Refused(e.kernel_error()));
    }
    // Frames were validated as they arrived; bytes past `pos` are a frame
    // that never completed.
    if let Some(e) = FrameSequence::unfinished(&data.buf, data.pos) {
        return Err(refuse(e));
    }
    // Every frame was accepted in order; the stream must also be complete:
    // exactly its compatibility frame, then its state frame (ENODATA
    // otherwise), so the state frame is the second.
    data.seq.finish().map_err(refuse)?;
    let (_, compat_len) = state::next_frame(&data.buf).map_err(refuse)?;
    let (frame, _) = state::next_frame(&data.buf[compat_len..]).map_err(refuse)?;
    drop(data);
    let st = frame.state.ok_or(Refused(ENODATA))?;
    let log = frame.pf;
    hal::validate(&st, ivf.regmap()).map_err(|e| {
        vf_line!(ivf, dev_err, "resume: {}\n", Msg(e));
        Refused(e.kernel_error())
    })?;
    sw.mark(Part::Decode);
    let admin = match &log.admin {
        Some(admin) => Some(
            crate::pf_admin::plan(
                ivf.dev(),
                ivf.core().pci(),
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
    sw.mark(Part::Plan);
    if let Some(plan) = &admin {
        plan.apply(ivf.dev(), ivf.core().pci()).map_err(Failed)?;
    }
    sw.mark(Part::Apply);
    if let Err(e) = load_device(ivf, &st, log.mbx.as_ref(), sw) {
        if let Some(plan) = &admin {
            plan.undo(ivf.dev(), ivf.core().pci());
        }
        return Err(Failed(e));
    }
    mig.record = Some(st.record());
    let mut restored = guest_cap::restored::REGISTERS;
    if log.mbx.is_some() {
        restored |= guest_cap::restored::FILTERS;
    }
    if admin.as_ref().is_some_and(|p| p.changes_anything()) {
        restored |= guest_cap::restored::ADMIN;
    }
    Ok(restored)
}

/// The device part of a load, with memory_lock held: the mailbox replay,
/// then the registers.
fn load_device(
    ivf: &IvfDevice,
    st: &hal::DeviceState,
    log: Option<&mbx::MbxLog>,
    sw: &mut Stopwatch,
) -> Result {
    // The replay's verdicts are the PF's words: no trapped access of the
    // user's runs on the mailbox page meanwhile.
    let _mailbox = ivf.mailbox();
    sw.mark(Part::MailboxLock);
    let mut bar = ivf.core().bar0()?;
    sw.mark(Part::Bar);
    if let Some(log) = log {
        let started = Instant::<Monotonic>::now();
        let (accepted, sent) = mbx::replay_log(&mut *bar, ivf.regmap(), ivf.family(), log)
            .map_err(|e| {
                vf_line!(ivf, dev_err, "PF replay failed: {}\n", Msg(e));
                e.kernel_error()
            })?;
        ivf.took(Step::Replay, started.elapsed().as_micros_ceil());
        dev_dbg!(ivf.dev(), "PF replay: {} mailbox messages\n", sent);
        ivf.pf_channel().snoop.log = accepted;
    } else {
        // No log in the stream: no replay this time.
        ivf.took(Step::Replay, 0);
    }
    sw.mark(Part::Replay);
    let res = hal::load(&mut *bar, ivf.regmap(), st);
    sw.mark(Part::Mmio);
    let c = bar.counts;
    sw.mmio(c);
    dev_dbg!(
        ivf.dev(),
        "load: {} MMIO reads, {} writes, {} polls\n",
        c.reads,
        c.writes,
        c.delays
    );
    res.map_err(|e| {
        vf_line!(ivf, dev_err, "load failed: {}\n", Msg(e));
        e.kernel_error()
    })
}

/// A file an arc made: the device keeps one reference, the user gets the other.
type NewFile = Option<(FileRef, UserFile)>;

/// One arc of the FSM. Returns the new data file, if the arc makes one;
/// notes in `walked` what other parts follow.
fn step(
    ivf: &IvfDevice,
    mig: &mut Migration,
    next: MigState,
    walked: &mut Walked,
) -> Result<NewFile> {
    let cur = mig.state;
    let mut sw = Stopwatch::start();
    let res = arc(ivf, mig, cur, next, walked, &mut sw);
    let timed = match (cur, next) {
        (RUNNING, RUNNING_P2P) | (PRE_COPY, PRE_COPY_P2P) => Some(Step::Quiesce),
        (PRE_COPY_P2P, STOP_COPY) | (STOP, STOP_COPY) => Some(Step::Save),
        (RESUMING, STOP) => Some(Step::Load),
        (RUNNING_P2P, RUNNING) | (PRE_COPY_P2P, PRE_COPY) => Some(Step::Resume),
        _ => None,
    };
    if let (Some(step), Ok(_)) = (timed, &res) {
        ivf.profiled(step, sw.finish());
        // Only the resume runs the guest again (a tuple pattern would
        // match every step).
        if matches!(step, Step::Resume) {
            walked.resumed = true;
        }
    }
    res
}

/// The work of one arc.
fn arc(
    ivf: &IvfDevice,
    mig: &mut Migration,
    cur: MigState,
    next: MigState,
    walked: &mut Walked,
    sw: &mut Stopwatch,
) -> Result<NewFile> {
    match (cur, next) {
        (RUNNING, RUNNING_P2P) | (PRE_COPY, PRE_COPY_P2P) => quiesce(ivf, mig, sw).map(|()| None),
        (RUNNING_P2P, RUNNING) | (PRE_COPY_P2P, PRE_COPY) => resume(ivf, mig, sw).map(|()| None),
        (RUNNING_P2P, STOP) | (STOP, RUNNING_P2P) => Ok(None),
        (RUNNING, PRE_COPY) | (RUNNING_P2P, PRE_COPY_P2P) => {
            let (f, n) = compat_frame(ivf)?;
            new_file(ivf, mig, Kind::Save, &f[..n], false).map(Some)
        }
        (PRE_COPY, RUNNING) | (PRE_COPY_P2P, RUNNING_P2P) | (STOP_COPY, STOP) => {
            mig.saving = None;
            Ok(None)
        }
        (PRE_COPY_P2P, STOP_COPY) => {
            let (st, carried) = read_state(ivf, mig, sw)?;
            let file = mig.saving.as_ref().ok_or(EINVAL)?;
            publish_state(ivf, file, &st, &carried, sw)?;
            Ok(None)
        }
        (STOP, STOP_COPY) => {
            let (f, n) = compat_frame(ivf)?;
            let file = new_file(ivf, mig, Kind::Save, &f[..n], false)?;
            sw.mark(Part::NewFile);
            let (st, carried) = read_state(ivf, mig, sw)?;
            publish_state(ivf, &file.0, &st, &carried, sw)?;
            Ok(Some(file))
        }
        (STOP, RESUMING) => new_file(ivf, mig, Kind::Resume, &[], false).map(Some),
        (RESUMING, STOP) => match load(ivf, mig, sw) {
            Ok(restored) => {
                mig.resuming = None;
                walked.loaded = Some(restored);
                Ok(None)
            }
            Err(LoadFailure::Refused(e)) => Err(e),
            Err(LoadFailure::Failed(e)) => {
                mig.state = ERROR;
                Err(e)
            }
        },
        _ => {
            vf_line!(
                ivf,
                dev_err,
                "unexpected migration arc {} -> {}\n",
                cur,
                next
            );
            Err(EINVAL)
        }
    }
}

/// Whether the stream can carry everything the PF holds for the VF's
/// guest. A feature whose PF-side state it cannot carry (IPsec SAs, igb's
/// extra MAC filters, a request the log does not know) stops a migration
/// before any arc runs, the guest still running where it is; it never
/// vanishes in one. Checked again at STOP_COPY: the guest runs during
/// PRE_COPY.
fn carried(ivf: &IvfDevice) -> Result {
    let Some(u) = ivf.pf_channel().snoop.log.uncarried() else {
        return Ok(());
    };
    vf_line!(ivf, dev_err, "cannot migrate: {}\n", Msg(u));
    Err(u.kernel_error())
}

/// What a walk of the FSM did that other parts follow: `IvfDevice`
/// applies it (device.rs), so the FSM calls no other part.
#[derive(Default)]
pub(crate) struct Walked {
    /// The data file the user gets, if an arc made one.
    pub(crate) file: Option<UserFile>,
    /// A stream was loaded; what it restored (`guest_cap::restored` bits).
    pub(crate) loaded: Option<u8>,
    /// A resume ran: the guest runs again.
    pub(crate) resumed: bool,
}

/// `migration_set_state` under the device's mutex: walk the FSM to `new`.
pub(crate) fn set_state(
    ivf: &IvfDevice,
    mig: &mut Current<'_, Migration>,
    new: MigState,
) -> Result<Walked> {
    if mig.state == ERROR {
        // Only a reset leaves ERROR (and ERROR is never a target); the core
        // WARNs when asked for a path from ERROR, so refuse here.
        return Err(EINVAL);
    }
    if matches!(new, PRE_COPY | PRE_COPY_P2P | STOP_COPY) && mig.state != new {
        carried(ivf)?;
    }
    // A reset that lands while the arcs run (it waits for their BAR0
    // sequences, then finds `mig` held) is seen here after them.
    let before = mig.seen();
    let mut walked = Walked::default();
    while mig.state != new {
        let next = ivf.core().next_state(mig.state, new)?;
        let file = match step(ivf, mig, next, &mut walked) {
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
        if let Some((keep, user)) = file {
            match next {
                RESUMING => mig.resuming = Some(keep),
                _ => mig.saving = Some(keep),
            }
            walked.file = Some(user);
        }
    }
    if before.reset_before(ivf.epoch().now()) {
        // The device the arcs ran on is gone: never report success on it.
        // The user's reference goes with `out`, which the user never gets.
        mig.catch_up(ivf.epoch(), ());
        vf_line!(
            ivf,
            dev_info,
            "the device was reset during the change to state {}: it is RUNNING\n",
            new
        );
        return Err(EIO);
    }
    Ok(walked)
}

/// `migration_get_data_size`: the STOP_COPY data of a device of map `map`.
pub(crate) fn data_size(map: &RegMap) -> usize {
    COMPAT_FRAME_LEN + state::state_frame_len(map)
}

// ---- the data file's operations (trampolines in ffi/mig_file.rs) ----

impl MigFile {
    /// Ends the file for its user: every call fails with ENODEV from now on.
    pub(crate) fn end(&self) {
        self.disabled.store(true, Ordering::Release);
        self.readable.notify_all();
    }

    /// The data, locked, unless the file was ended (ENODEV).
    fn lock(&self) -> Result<kernel::sync::MutexGuard<'_, FileData>> {
        let d = self.data.lock();
        if self.disabled.load(Ordering::Acquire) {
            return Err(ENODEV);
        }
        Ok(d)
    }

    /// `read` of a save file.
    pub(crate) fn read(&self, ubuf: UserPtr, len: usize) -> Result<usize> {
        let mut d = self.lock()?;
        let left = d.buf.len() - d.pos;
        if left == 0 {
            // PRE_COPY has a temporary end of data; STOP_COPY a permanent one.
            return if d.complete { Ok(0) } else { Err(ENOMSG) };
        }
        if len == 0 {
            // 0 would read as the end of the stream while data is waiting.
            return Err(EINVAL);
        }
        let n = left.min(len);
        let mut w = UserSlice::new(ubuf, n).writer();
        w.write_slice(&d.buf[d.pos..d.pos + n])?;
        // The transfer ended (reset, close, unbind) while the copy waited
        // on the user's memory: what it copied belongs to no stream now.
        if self.disabled.load(Ordering::Acquire) {
            return Err(ENODEV);
        }
        d.pos += n;
        Ok(n)
    }

    /// `write` of a resume file: every frame completed is checked at once.
    pub(crate) fn write(&self, ubuf: UserPtr, len: usize) -> Result<usize> {
        let mut d = self.lock()?;
        if let Some(e) = d.error {
            return Err(e.kernel_error());
        }
        if d.buf.len() + len > MAX_RESUME_LEN {
            let e = StreamError::TooLarge {
                len: d.buf.len() + len,
                max: MAX_RESUME_LEN,
            };
            user_line!(SHARED_LINES, dev_err, d.dev, "resume: {}\n", Msg(e));
            d.error = Some(e);
            return Err(e.kernel_error());
        }
        let start = d.buf.len();
        d.buf.resize(start + len, 0, GFP_KERNEL_ACCOUNT)?;
        let mut r = UserSlice::new(ubuf, len).reader();
        if let Err(e) = r.read_slice(&mut d.buf[start..]) {
            d.buf.truncate(start);
            return Err(e);
        }
        // As in `read`: the transfer may have ended during the copy.
        if self.disabled.load(Ordering::Acquire) {
            d.buf.truncate(start);
            return Err(ENODEV);
        }
        let FileData {
            buf,
            pos,
            caps,
            seq,
            ..
        } = &mut *d;
        if let Err(e) = seq.feed(buf, pos, caps) {
            user_line!(
                SHARED_LINES,
                dev_err,
                d.dev,
                "resume stream refused: {}\n",
                Msg(e)
            );
            d.error = Some(e);
            return Err(e.kernel_error());
        }
        Ok(len)
    }

    /// `VFIO_MIG_GET_PRECOPY_INFO`: the initial bytes not read yet (device
    /// state changes only at STOP_COPY, so no dirty bytes). Only in the
    /// PRE_COPY states.
    pub(crate) fn precopy_initial_bytes(&self) -> Result<u64> {
        // An ended file is no longer in a PRE_COPY state: the uAPI's answer
        // to that is EINVAL, not the ENODEV of a read.
        let d = self.lock().map_err(|_| EINVAL)?;
        if d.kind != Kind::Save || d.complete {
            return Err(EINVAL);
        }
        Ok(d.initial_len.saturating_sub(d.pos) as u64)
    }

    /// `poll` of a save file: readable while data waits (or at the end, where
    /// `read` returns 0); an ended file (reset, close) is an error. In
    /// PRE_COPY with everything read, a poller sleeps until STOP_COPY adds
    /// the state.
    pub(crate) fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &self.readable);
        if self.disabled.load(Ordering::Acquire) {
            return bindings::ivf_uapi_IVF_EPOLLERR;
        }
        let d = self.data.lock();
        if d.pos < d.buf.len() || d.complete {
            bindings::ivf_uapi_IVF_EPOLLIN | bindings::ivf_uapi_IVF_EPOLLRDNORM
        } else {
            0
        }
    }
}
