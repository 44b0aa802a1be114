// SPDX-License-Identifier: GPL-2.0

//! One VF bound to this driver: the vfio-pci-core device, what the VF is,
//! and the state of each part of the driver, each following the device's
//! resets and users through one [`Epoch`] (epoch.rs).
//!
//! Lock order (Documentation/design.rst, "Lock order"): a path never waits
//! for a lock of a higher row while it holds one of a lower row.
//!
//! 1. `dirty`
//! 2. vfio's `dev_set->lock`
//! 3. `mig`
//! 4. the announcer's mutex
//! 5. rtnl (never held with rows 6-9)
//! 6. `mailbox`
//! 7. a migration file's data
//! 8. vfio's `memory_lock`
//! 9. `pf`, `cap`
//! 10. `profiles` (a spinlock: nothing is taken or waited for under it)

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::{Mutex, MutexGuard, SpinLock};
use kernel::uaccess::UserPtr;

use crate::common::ids::{Family, VfDevice};
use crate::common::regs::{regmap, RegMap};
use crate::dirty::DirtyLog;
use crate::epoch::{new_synced, Current, Epoch, Synced};
use crate::ffi::announce::Announcer;
use crate::ffi::mig_file::UserFile;
use crate::ffi::uapi::RegionPos;
use crate::ffi::vfio_core::{CoreDevice, DmaAccess};
use crate::forget::Moment;
use crate::guest_cap::GuestCap;
use crate::lm::{self, MigState, Migration};
use crate::log_limit::LogLimit;
use crate::profile::StepProfile;
use crate::switches::{Switch, Switches};
use crate::trap::PfChannel;
use crate::trap::{self, MailboxSpan};

/// One VF bound to this driver.
///
/// Allocated by the vfio core as one zeroed block with our ops; `core`
/// stays the first field (the core's `vfio_device` is at offset 0), and
/// `state` is initialised by `init` and dropped by `release` (ffi/ops.rs).
#[repr(C)]
pub(crate) struct IvfDevice {
    core: CoreDevice,
    /// The guest-memory accessor of an iommufd user (zeroed with the
    /// allocation, which is its unbound state).
    dma: DmaAccess,
    state: VfState,
}

// Every thread the vfio core calls in on shares the device.
const _: () = {
    const fn shared<T: Sync>() {}
    shared::<IvfDevice>()
};

/// The driver's state of one VF.
#[pin_data]
pub(crate) struct VfState {
    /// What the VF is.
    vf: &'static VfDevice,
    /// Resets and users so far; every part below follows it.
    epoch: Epoch,
    /// The migration FSM and its files (lm.rs).
    #[pin]
    mig: Synced<Migration>,
    /// The PF channel: the mailbox log (trap.rs).
    #[pin]
    pf: Synced<PfChannel>,
    /// One user of the VF's mailbox at a time: a trapped access to the
    /// mailbox page (with its snoop), the PF replay, the forget. Held
    /// before memory_lock and never across rtnl or the dirty tracker's
    /// locks (Documentation/design.rst, "Lock order").
    #[pin]
    mailbox: Mutex<()>,
    /// Device DMA logging (dirty.rs).
    #[pin]
    dirty: Synced<DirtyLog>,
    /// The guest-visible capability (guest_cap.rs).
    #[pin]
    cap: Synced<GuestCap>,
    /// The per-VF switches (switches.rs).
    switches: Switches,
    /// Times the PF dropped a guest's filters (sysfs `pf_forgets`).
    forgets: AtomicU32,
    /// The PF forgot the last user's guest when it closed: the next open
    /// need not again.
    forgotten_at_close: AtomicBool,
    /// The announce's sender.
    announcer: Announcer,
    /// The kernel-log lines this VF's users can cause.
    lines: LogLimit,
    /// How long the last of each migration step took, in microseconds
    /// (sysfs `migration_times`): the device's share of a downtime.
    times: [AtomicU32; Step::COUNT],
    /// Where the last of each step's time went (sysfs `migration_profile`);
    /// the replay's slot stays empty (it is a part of the load's).
    #[pin]
    profiles: SpinLock<[StepProfile; Step::COUNT]>,
}

/// A migration step whose duration is kept.
#[derive(Copy, Clone)]
pub(crate) enum Step {
    /// RUNNING -> RUNNING_P2P: the data path stopped.
    Quiesce,
    /// The state frame read from the device (STOP_COPY).
    Save,
    /// RESUMING -> STOP: the whole load.
    Load,
    /// Of the load: the PF replay through the mailbox.
    Replay,
    /// RUNNING_P2P -> RUNNING: the data path going again.
    Resume,
}

impl Step {
    /// How many; sysfs `migration_times` shows them in this order.
    pub(crate) const COUNT: usize = 5;

    /// The steps with a profile of their own, and their names.
    pub(crate) const PROFILED: [(Step, &'static str); 4] = [
        (Step::Quiesce, "quiesce"),
        (Step::Save, "save"),
        (Step::Load, "load"),
        (Step::Resume, "resume"),
    ];
}

impl VfState {
    /// The state of a newly bound `vf`, its switches at their defaults.
    pub(crate) fn new(vf: &'static VfDevice) -> impl PinInit<Self> {
        pin_init!(VfState {
            vf,
            epoch: Epoch::default(),
            mig <- new_synced!(Migration::new(), "intel_vf_vfio_pci::mig"),
            pf <- new_synced!(PfChannel::default(), "intel_vf_vfio_pci::pf"),
            mailbox <- kernel::new_mutex!((), "intel_vf_vfio_pci::mailbox"),
            dirty <- new_synced!(DirtyLog::default(), "intel_vf_vfio_pci::dirty"),
            cap <- new_synced!(GuestCap::new(), "intel_vf_vfio_pci::cap"),
            switches: Switches::defaults(),
            forgets: AtomicU32::new(0),
            forgotten_at_close: AtomicBool::new(false),
            announcer: Announcer::new(),
            lines: LogLimit::new(),
            times: [const { AtomicU32::new(0) }; Step::COUNT],
            profiles <- kernel::new_spinlock!(
                [StepProfile::default(); Step::COUNT],
                "intel_vf_vfio_pci::profiles"
            ),
        })
    }
}

impl IvfDevice {
    /// Where `state` lies, for `init` and `release` (ffi/ops.rs), which
    /// initialise and drop it in place.
    pub(crate) const STATE_OFFSET: usize = core::mem::offset_of!(IvfDevice, state);

    /// The vfio-pci-core device.
    pub(crate) fn core(&self) -> &CoreDevice {
        &self.core
    }

    /// The VF's device, for log messages.
    pub(crate) fn dev(&self) -> &kernel::device::Device {
        self.core.dev()
    }

    /// The guest-memory accessor (ffi/vfio_core.rs).
    pub(crate) fn dma_access(&self) -> &DmaAccess {
        &self.dma
    }

    /// What the VF is.
    pub(crate) fn vf(&self) -> &'static VfDevice {
        self.state.vf
    }

    /// The VF's family.
    pub(crate) fn family(&self) -> Family {
        self.state.vf.family
    }

    /// The VF's register map.
    pub(crate) fn regmap(&self) -> &'static RegMap {
        regmap(self.state.vf.family)
    }

    /// The device's resets and users.
    pub(crate) fn epoch(&self) -> &Epoch {
        &self.state.epoch
    }

    /// The migration state.
    pub(crate) fn mig(&self) -> &Synced<Migration> {
        &self.state.mig
    }

    /// The PF channel state, locked and current.
    pub(crate) fn pf_channel(&self) -> Current<'_, PfChannel> {
        self.state.pf.lock_current(self.epoch())
    }

    /// The VF's mailbox, to itself: while the guard lives no other trapped
    /// access, replay or forget touches the mailbox page, so what the
    /// holder reads there is the PF's word, not a racing user's.
    pub(crate) fn mailbox(&self) -> MutexGuard<'_, ()> {
        self.state.mailbox.lock()
    }

    /// The logging state.
    pub(crate) fn dirty(&self) -> &Synced<DirtyLog> {
        &self.state.dirty
    }

    /// The guest capability's state, locked and current.
    pub(crate) fn guest_cap(&self) -> Current<'_, GuestCap> {
        self.state.cap.lock_current(self.epoch())
    }

    /// A user opened the device (after the core enabled it, resetting the
    /// VF where it can): nothing of an earlier user remains, whether or not
    /// that reset happened (every part catches up at its next lock), and
    /// the PF holds no filter of an earlier guest.
    pub(crate) fn opened(&self) {
        self.epoch().user_changed();
        // The first open since bind, or after a close that could not reach
        // the PF: what an earlier user (or driver) left goes now.
        if !self.state.forgotten_at_close.swap(false, Ordering::AcqRel) {
            crate::forget::forget_guest(self, Moment::Open);
        }
        crate::guest_cap::opened(self);
        pr_debug!(
            "opened a {} ({} family)\n",
            self.vf().name,
            self.family().name()
        );
    }

    /// The last user closes the device: its transfers end now (their files
    /// fail from here on). Runs under dev_set->lock, which the tracker takes
    /// inside its own mutex: the logging session is ended now if its mutex
    /// is free, else at its next use.
    ///
    /// The PF then drops the guest's filters: after a migration the source
    /// host reaches the guest at its new place at once.
    pub(crate) fn closing(&self) {
        self.epoch().user_changed();
        drop(self.mig().lock_current(self.epoch()));
        if let Some(log) = self.dirty().try_lock() {
            drop(log.catch_up(self.epoch(), None));
        }
        self.announcer().stop();
        let forgot = crate::forget::forget_guest(self, Moment::Close);
        self.state
            .forgotten_at_close
            .store(forgot, Ordering::Release);
    }

    /// Whether switch `s` is on.
    pub(crate) fn switch(&self, s: Switch) -> bool {
        self.state.switches.get(s)
    }

    /// Turns switch `s` on or off; the caller obeyed its row's `changes`
    /// (the shim's store checks "while closed" under dev_set->lock).
    pub(crate) fn set_switch(&self, s: Switch, on: bool) {
        self.state.switches.set(s, on);
    }

    /// The limiter of the log lines this VF's users can cause.
    pub(crate) fn lines(&self) -> &LogLimit {
        &self.state.lines
    }

    /// The announce's sender.
    pub(crate) fn announcer(&self) -> &Announcer {
        &self.state.announcer
    }

    /// Keeps how long `step` took this time.
    pub(crate) fn took(&self, step: Step, us: i64) {
        let us = u32::try_from(us.max(0)).unwrap_or(u32::MAX);
        self.state.times[step as usize].store(us, Ordering::Relaxed);
    }

    /// Keeps where `step`'s time went this time, and its total as
    /// [`IvfDevice::took`] does.
    pub(crate) fn profiled(&self, step: Step, p: StepProfile) {
        self.took(step, (p.total_ns as i64).saturating_add(999) / 1000);
        self.state.profiles.lock()[step as usize] = p;
    }

    /// Where the last of each step's time went, in [`Step`] order.
    pub(crate) fn profiles(&self) -> [StepProfile; Step::COUNT] {
        *self.state.profiles.lock()
    }

    /// How long the last of each step took (microseconds), in [`Step`]
    /// order.
    pub(crate) fn times(&self) -> [u32; Step::COUNT] {
        core::array::from_fn(|i| self.state.times[i].load(Ordering::Relaxed))
    }

    /// The PF dropped a guest's filters.
    pub(crate) fn forgotten(&self) {
        self.state.forgets.fetch_add(1, Ordering::Relaxed);
    }

    /// Times the PF dropped a guest's filters since bind.
    pub(crate) fn forgets(&self) -> u32 {
        self.state.forgets.load(Ordering::Relaxed)
    }

    /// A reset finished (FLR, `VFIO_DEVICE_RESET`, AER): any migration
    /// ends. It cannot wait for the FSM's mutex (the reset path holds locks
    /// that a holder takes): the FSM catches up now if it is free, else at
    /// its holder's next check.
    pub(crate) fn reset_done(&self) {
        self.epoch().reset_done();
        if let Some(mig) = self.mig().try_lock() {
            drop(mig.catch_up(self.epoch(), ()));
        }
    }

    /// `migration_set_state`: walks the FSM to `new`; returns the data file
    /// the user gets, if an arc made one. The parts that follow a
    /// migration are told here: the guest capability of a load, the
    /// announce of a guest that runs here after one (its PF view read at
    /// the load, so the resume takes no rtnl; sent after the resume, whose
    /// time is the guest's downtime).
    pub(crate) fn set_state(&self, new: MigState) -> Result<Option<UserFile>> {
        let mut mig = self.mig().lock_current(self.epoch());
        let walked = lm::set_state(self, &mut mig, new)?;
        if let Some(restored) = walked.loaded {
            crate::guest_cap::resumed(self, restored);
            mig.expect_arrival(crate::announce::port_settings(self));
        }
        if walked.resumed {
            if let Some(arrival) = mig.take_arrival() {
                crate::announce::arrived(self, &arrival);
            }
        }
        Ok(walked.file)
    }

    /// `read` of a region of the VF: config space with the guest
    /// capability (guest_cap.rs), BAR0's mailbox page through the PF
    /// channel's snoop (trap.rs), the rest the core's.
    pub(crate) fn read(&self, buf: UserPtr, count: usize, pos: &mut i64) -> isize {
        let at = RegionPos::of(*pos as u64);
        if at.in_config() {
            return crate::guest_cap::config_read(self, at, buf, count, pos);
        }
        match trap::mailbox_span(self, at, count) {
            MailboxSpan::Outside => self.core().read(buf, count, pos),
            MailboxSpan::Inside => trap::mailbox_read(self, at, buf, count, pos),
            MailboxSpan::Straddles(first) => {
                trap::split_at_edge(buf, count, pos, first, |b, c, p| self.read(b, c, p))
            }
        }
    }

    /// `write` of a region of the VF: config space without the guest
    /// capability's bytes, BAR0's mailbox page through the snoop (a VF
    /// reset it makes is the tracker's news too), the RX queue page through
    /// the tracker in device-logging mode (dirty.rs), the rest the core's.
    pub(crate) fn write(&self, buf: UserPtr, count: usize, pos: &mut i64) -> isize {
        let at = RegionPos::of(*pos as u64);
        if at.in_config() {
            return crate::guest_cap::config_write(self, at, buf, count, pos);
        }
        match trap::mailbox_span(self, at, count) {
            MailboxSpan::Inside => {
                // The mailbox lock is released: the tracker's locks come
                // before it (design.rst, "Lock order").
                let w = trap::mailbox_write(self, at, buf, count, pos);
                if w.vf_reset {
                    crate::dirty::vf_reset(self);
                }
                w.n
            }
            MailboxSpan::Straddles(first) => {
                trap::split_at_edge(buf, count, pos, first, |b, c, p| self.write(b, c, p))
            }
            MailboxSpan::Outside => crate::dirty::region_write(self, at, buf, count, pos)
                .unwrap_or_else(|| self.core().write(buf, count, pos)),
        }
    }

    /// `migration_get_state`.
    pub(crate) fn get_state(&self) -> MigState {
        self.mig().lock_current(self.epoch()).state
    }

    /// `migration_get_data_size`: the STOP_COPY data of this device.
    pub(crate) fn data_size(&self) -> usize {
        lm::data_size(self.regmap())
    }
}
