// SPDX-License-Identifier: GPL-2.0

//! The guest's DMA memory: anonymous, page-aligned, zeroed.

use std::io;

/// An anonymous mapping, unmapped on drop.
pub struct DmaMem {
    ptr: *mut u8,
    len: usize,
}

impl DmaMem {
    /// Maps `len` zeroed bytes.
    pub fn new(len: usize) -> Result<Self, ivf_vfio::Error> {
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ivf_vfio::Error::new(
                "mapping guest memory",
                io::Error::last_os_error(),
            ));
        }
        Ok(DmaMem { ptr: p.cast(), len })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The bytes (the device may be writing them: read volatile-free snapshots).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` bytes for our lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` excludes other borrows.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

// SAFETY: the mapping is owned by the DmaMem alone; `&mut self` guards
// writes, so it may move to another thread.
unsafe impl Send for DmaMem {}

impl Drop for DmaMem {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
