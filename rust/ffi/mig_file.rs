// SPDX-License-Identifier: GPL-2.0

//! The migration data files: creating them (an anon inode whose private
//! data is the `MigFile`), the references the device and the user hold,
//! and the `file_operations` trampolines (the tables are in shim.c).

use kernel::prelude::*;
use kernel::sync::poll::PollTable;
use kernel::types::ForeignOwnable;
use kernel::uaccess::UserPtr;

use super::bindings;
use super::uapi;
use crate::lm::{Kind, MigFile};

/// The device's reference to one of its data files. Dropping it ends the
/// file for its user (the FSM left the file's state).
pub(crate) struct FileRef {
    filp: *mut bindings::file,
    migf: *const MigFile,
}

// SAFETY: a file reference may be dropped (fput) from any thread, and the
// `MigFile` it points to is `Sync` (atomics, mutexes, a condvar).
unsafe impl Send for FileRef {}

impl FileRef {
    /// The file's data.
    pub(crate) fn migf(&self) -> &MigFile {
        // SAFETY: we hold a reference on `filp`, so its private data, the
        // `MigFile`, lives until our `fput`.
        unsafe { &*self.migf }
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        self.migf().end();
        // SAFETY: the reference taken in `create` is ours to drop.
        unsafe { kernel::bindings::fput(self.filp.cast()) };
    }
}

/// The user's reference to a new data file, until it is handed to the
/// vfio core (which installs it as an fd); dropped unused, it is released.
pub(crate) struct UserFile(*mut bindings::file);

// SAFETY: as for `FileRef`.
unsafe impl Send for UserFile {}

impl UserFile {
    /// Hands the reference over.
    pub(crate) fn into_raw(self) -> *mut bindings::file {
        let f = self.0;
        core::mem::forget(self);
        f
    }
}

impl Drop for UserFile {
    fn drop(&mut self) {
        // SAFETY: the reference the file was created with, never handed over.
        unsafe { kernel::bindings::fput(self.0.cast()) };
    }
}

/// Creates the data file of `migf`: one reference for the device, one for
/// the user.
pub(crate) fn create(migf: Pin<KBox<MigFile>>, kind: Kind) -> Result<(FileRef, UserFile)> {
    let raw = migf.into_foreign();
    // SAFETY: `raw` becomes the file's private data; on failure we take it back.
    let filp = unsafe { bindings::ivf_mig_file_create(raw.cast(), kind == Kind::Save) };
    if let Err(e) = kernel::error::from_err_ptr(filp) {
        // SAFETY: the file was not created, so `raw` is still only ours.
        drop(unsafe { <Pin<KBox<MigFile>> as ForeignOwnable>::from_foreign(raw) });
        return Err(e);
    }
    // SAFETY: a second reference, for the device.
    unsafe { bindings::ivf_get_file(filp) };
    Ok((
        FileRef {
            filp,
            migf: raw.cast_const().cast(),
        },
        UserFile(filp),
    ))
}

/// # Safety
///
/// `filp` must be one of our data files, inside one of its file ops.
unsafe fn migf<'a>(filp: *mut bindings::file) -> &'a MigFile {
    // SAFETY: private_data is our `Pin<KBox<MigFile>>`, alive until
    // `release`, which cannot run during another file op.
    unsafe { <Pin<KBox<MigFile>> as ForeignOwnable>::borrow((*filp).private_data.cast()) }.get_ref()
}

/// A result as a file op's return value.
fn ret(r: Result<usize>) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `read` of a save file. Our files are streams: a position is ESPIPE.
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
    if !pos.is_null() {
        return ESPIPE.to_errno() as isize;
    }
    // SAFETY: called by the VFS for our file.
    ret(unsafe { migf(filp) }.read(UserPtr::from_ptr(ubuf.cast()), len))
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
    if !pos.is_null() {
        return ESPIPE.to_errno() as isize;
    }
    // SAFETY: called by the VFS for our file.
    ret(unsafe { migf(filp) }.write(UserPtr::from_ptr(ubuf.cast_mut().cast()), len))
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
    if cmd != bindings::ivf_uapi_IVF_VFIO_MIG_GET_PRECOPY_INFO {
        return ENOTTY.to_errno() as isize;
    }
    // SAFETY: called by the VFS for our file.
    let initial = match unsafe { migf(filp) }.precopy_initial_bytes() {
        Ok(n) => n,
        Err(e) => return e.to_errno() as isize,
    };
    let minsz = core::mem::offset_of!(bindings::vfio_precopy_info, dirty_bytes) + size_of::<u64>();
    let mut info: bindings::vfio_precopy_info = match uapi::read_user(arg, minsz) {
        Ok(i) => i,
        Err(e) => return e.to_errno() as isize,
    };
    if (info.argsz as usize) < minsz {
        return EINVAL.to_errno() as isize;
    }
    info.flags = 0;
    info.initial_bytes = initial;
    info.dirty_bytes = 0;
    ret(uapi::write_user(arg, &info, minsz).map(|()| 0))
}

/// `poll` of a save file.
///
/// # Safety
///
/// Called by the VFS for one of our save files.
#[no_mangle]
pub(crate) unsafe extern "C" fn ivf_mig_poll(
    filp: *mut bindings::file,
    table: *mut bindings::poll_table,
) -> kernel::ffi::c_uint {
    // SAFETY: the VFS passes a live file and a valid (or null) table for
    // the duration of the call.
    let (m, file, table) = unsafe {
        (
            migf(filp),
            kernel::fs::File::from_raw_file(filp),
            PollTable::from_raw(table),
        )
    };
    m.poll(file, table)
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
