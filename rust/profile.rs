// SPDX-License-Identifier: GPL-2.0

//! Where a migration step's time goes: its parts, timed in order, and its
//! MMIO (sysfs `migration_profile`, `make bench`'s table).
//!
//! A step's downtime share is meant to sit near the cost of its MMIO: the
//! profile shows what else it spends (locks, allocations, the PF's
//! settings, the mailbox replay's waits) so that each part outside the
//! device either leaves the stop window or says why it stays.

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use core::fmt::Write;
use kernel::time::{Instant, Monotonic};

use crate::mmio::MmioCounts;

/// A part of a step, in the order the steps meet them.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Part {
    /// Taking memory_lock and mapping BAR0.
    Bar,
    /// The register sequence itself (the MMIO the counts count).
    Mmio,
    /// A save file made (STOP -> STOP_COPY, which no PRE_COPY prepared).
    NewFile,
    /// The PF channel's log, copied under its mutex.
    PfLog,
    /// The administrator's settings read from the PF (rtnl).
    PfAdmin,
    /// The state frame encoded into the data file's buffer.
    Encode,
    /// The data file's reader woken.
    Publish,
    /// The written stream's frames and registers checked.
    Decode,
    /// What the stream's settings may change here, checked (rtnl).
    Plan,
    /// The settings applied to the PF (rtnl).
    Apply,
    /// The VF's mailbox taken from trapped accesses.
    MailboxLock,
    /// The PF replay through the mailbox, its waits for the PF included.
    Replay,
}

impl Part {
    /// The name `migration_profile` prints.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Part::Bar => "bar",
            Part::Mmio => "mmio",
            Part::NewFile => "new_file",
            Part::PfLog => "pf_log",
            Part::PfAdmin => "pf_admin",
            Part::Encode => "encode",
            Part::Publish => "publish",
            Part::Decode => "decode",
            Part::Plan => "plan",
            Part::Apply => "apply",
            Part::MailboxLock => "mailbox_lock",
            Part::Replay => "replay",
        }
    }
}

/// The most parts one step has (load: decode, plan, apply, mailbox_lock,
/// bar, replay, mmio).
const MAX_PARTS: usize = 8;

/// One run of a step: total, parts and MMIO.
#[derive(Copy, Clone, Default)]
pub(crate) struct StepProfile {
    /// Wall time of the whole step, in nanoseconds.
    pub(crate) total_ns: u64,
    /// The MMIO of its register sequences (polls included).
    pub(crate) mmio: MmioCounts,
    /// The parts in the order they ran, nanoseconds each.
    parts: [Option<(Part, u32)>; MAX_PARTS],
}

impl StepProfile {
    /// Writes `name total_ns T reads R writes W polls P PART NS ...`, the
    /// rest of the total (no part of its own) as `other`.
    pub(crate) fn write(&self, name: &str, out: &mut impl Write) -> core::fmt::Result {
        let c = self.mmio;
        write!(
            out,
            "{name} total_ns {} reads {} writes {} polls {}",
            self.total_ns, c.reads, c.writes, c.delays
        )?;
        let mut sum = 0u64;
        for (p, ns) in self.parts.iter().flatten() {
            write!(out, " {} {ns}", p.name())?;
            sum += u64::from(*ns);
        }
        writeln!(out, " other {}", self.total_ns.saturating_sub(sum))
    }
}

/// Times one step's parts as it runs.
pub(crate) struct Stopwatch {
    started: Instant<Monotonic>,
    last: Instant<Monotonic>,
    profile: StepProfile,
    next: usize,
}

impl Stopwatch {
    /// Starts timing a step.
    pub(crate) fn start() -> Self {
        let now = Instant::<Monotonic>::now();
        Stopwatch {
            started: now,
            last: now,
            profile: StepProfile::default(),
            next: 0,
        }
    }

    /// The time since the last mark (or the start) was part `p`. A part
    /// met again (a step that loops) adds to its slot.
    pub(crate) fn mark(&mut self, p: Part) {
        let now = Instant::<Monotonic>::now();
        let ns = u32::try_from((now - self.last).as_nanos().max(0)).unwrap_or(u32::MAX);
        self.last = now;
        let parts = &mut self.profile.parts;
        if let Some((_, t)) = parts.iter_mut().flatten().find(|(q, _)| *q == p) {
            *t = t.saturating_add(ns);
        } else if let Some(slot) = parts.get_mut(self.next) {
            *slot = Some((p, ns));
            self.next += 1;
        }
    }

    /// The step did these MMIO accesses.
    pub(crate) fn mmio(&mut self, c: MmioCounts) {
        let m = &mut self.profile.mmio;
        m.reads += c.reads;
        m.writes += c.writes;
        m.delays += c.delays;
    }

    /// The whole step's profile, now.
    pub(crate) fn finish(mut self) -> StepProfile {
        self.profile.total_ns = (Instant::<Monotonic>::now() - self.started)
            .as_nanos()
            .max(0) as u64;
        self.profile
    }
}
