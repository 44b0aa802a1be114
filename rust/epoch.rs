// SPDX-License-Identifier: GPL-2.0

//! One rule for what happens to a VF behind the driver's back.
//!
//! Two kinds of event void the driver's view of a VF: a **reset** (FLR,
//! `VFIO_DEVICE_RESET`, a hot reset, AER recovery: the PF forgets the VF's
//! filters and the queues are off) and a **change of user** (open, close:
//! nothing of one user may reach the next). Both arrive where the state they
//! void cannot always be locked: `reset_done` runs under vfio's locks that the
//! state's holders take, and close runs under `dev_set->lock`, which the
//! dirty tracker takes inside its own mutex. So an event only counts itself
//! in the device's [`Epoch`], and each part of the driver keeps its state in
//! a [`Synced`] mutex that remembers the epoch it last saw. Locking hands out
//! a [`Locked`] guard, which gives the state only through
//! [`Locked::catch_up`]: the part's [`FollowsDevice::catch_up`] runs first
//! for whatever happened since. "What does a reset do to X" is therefore
//! answered in one place per part: its `catch_up` (mlx5 applies its deferred
//! reset at unlock for the same reason).

// The logic has no `unsafe`: that is the FFI layer's (rust/ffi/, mmio.rs).
#![deny(unsafe_code)]

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::{Mutex, MutexGuard};

/// The device's event counters.
#[derive(Default)]
pub(crate) struct Epoch {
    resets: AtomicU64,
    users: AtomicU64,
}

/// A reading of the [`Epoch`].
#[derive(Copy, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    resets: u64,
    users: u64,
}

/// What happened between two readings.
#[derive(Copy, Clone, Default)]
pub(crate) struct Since {
    /// The VF was reset at least once.
    pub(crate) reset: bool,
    /// The device was opened or closed at least once.
    pub(crate) new_user: bool,
}

impl Epoch {
    /// The counters now.
    pub(crate) fn now(&self) -> Stamp {
        Stamp {
            resets: self.resets.load(Ordering::Acquire),
            users: self.users.load(Ordering::Acquire),
        }
    }

    /// Counts a finished reset.
    pub(crate) fn reset_done(&self) {
        self.resets.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts an open or a close.
    pub(crate) fn user_changed(&self) {
        self.users.fetch_add(1, Ordering::AcqRel);
    }
}

impl Stamp {
    /// What `now` has that `self` had not seen.
    pub(crate) fn since(self, now: Stamp) -> Since {
        Since {
            reset: self.resets != now.resets,
            new_user: self.users != now.users,
        }
    }

    /// Whether a reset happened between `self` and `now`.
    pub(crate) fn reset_before(self, now: Stamp) -> bool {
        self.resets != now.resets
    }
}

/// State that must follow the device's events.
pub(crate) trait FollowsDevice {
    /// What catching up may use (the device, for the dirty tracker).
    type Ctx<'c>;

    /// Brings the state up to date with `since`; called under its mutex,
    /// before anybody sees the state.
    fn catch_up(&mut self, since: Since, ctx: Self::Ctx<'_>);
}

/// A state and the epoch it is current with.
pub(crate) struct Stamped<T> {
    seen: Stamp,
    state: T,
}

impl<T> Stamped<T> {
    /// `state`, current with a device that has seen no event yet.
    pub(crate) fn new(state: T) -> Self {
        Stamped {
            seen: Stamp::default(),
            state,
        }
    }
}

/// A mutex whose state catches up with the device's [`Epoch`] before use.
#[pin_data]
pub(crate) struct Synced<T> {
    #[pin]
    inner: Mutex<Stamped<T>>,
}

/// Creates a [`Synced`] initialiser with a lock class of its own.
macro_rules! new_synced {
    ($state:expr, $name:literal) => {
        $crate::epoch::Synced::new(kernel::new_mutex!(
            $crate::epoch::Stamped::new($state),
            $name
        ))
    };
}
pub(crate) use new_synced;

impl<T> Synced<T> {
    /// Wraps the mutex `inner` makes (see [`new_synced`]).
    pub(crate) fn new(inner: impl PinInit<Mutex<Stamped<T>>>) -> impl PinInit<Self> {
        pin_init!(Synced { inner <- inner })
    }
}

impl<T: FollowsDevice + Unpin> Synced<T> {
    /// Locks the state; it is handed out by [`Locked::catch_up`].
    pub(crate) fn lock(&self) -> Locked<'_, T> {
        Locked(self.inner.lock())
    }

    /// Locks the state if nobody holds it.
    pub(crate) fn try_lock(&self) -> Option<Locked<'_, T>> {
        self.inner.try_lock().map(Locked)
    }

    /// Locks the state and catches it up, for parts whose catching up
    /// needs nothing.
    pub(crate) fn lock_current<'c>(&self, epoch: &Epoch) -> Current<'_, T>
    where
        T::Ctx<'c>: Default,
    {
        self.lock().catch_up(epoch, Default::default())
    }
}

/// The locked state, not yet caught up.
pub(crate) struct Locked<'a, T>(MutexGuard<'a, Stamped<T>>);

impl<'a, T: FollowsDevice + Unpin> Locked<'a, T> {
    /// Catches the state up with `epoch` and hands it out.
    pub(crate) fn catch_up(self, epoch: &Epoch, ctx: T::Ctx<'_>) -> Current<'a, T> {
        let mut cur = Current(self.0);
        cur.catch_up(epoch, ctx);
        cur
    }

    /// The state as it was last caught up, for counters that a read must
    /// not change (sysfs), and whether it is still current.
    pub(crate) fn peek(&self, epoch: &Epoch) -> (&T, Since) {
        (&self.0.state, self.0.seen.since(epoch.now()))
    }
}

/// The locked state, current with the device's epoch when handed out.
pub(crate) struct Current<'a, T>(MutexGuard<'a, Stamped<T>>);

impl<T: FollowsDevice + Unpin> Current<'_, T> {
    /// Catches up again, for a holder that waited on the device (an event
    /// may have come meanwhile).
    pub(crate) fn catch_up(&mut self, epoch: &Epoch, ctx: T::Ctx<'_>) {
        let now = epoch.now();
        let since = self.0.seen.since(now);
        if since.reset || since.new_user {
            self.0.state.catch_up(since, ctx);
            self.0.seen = now;
        }
    }

    /// The epoch the state is current with.
    pub(crate) fn seen(&self) -> Stamp {
        self.0.seen
    }
}

impl<T> Deref for Current<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.state
    }
}

impl<T: Unpin> DerefMut for Current<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.state
    }
}
