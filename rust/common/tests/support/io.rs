// SPDX-License-Identifier: GPL-2.0

//! Doubles of a device for the code that reads its registers ([`RegIo`])
//! and the guest memory it points to ([`DmaRead`]): a plain register file,
//! guest memory at some IOVA, and a shared handle to a model, so that the
//! code under test holds one (or two: registers and DMA) while the test
//! drives the model.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ivf_common::hal::RegIo;
use ivf_common::tracker::DmaRead;

/// A register file: every register reads what was last written (0 at
/// first); nothing has a side effect, and a delay takes no time.
#[derive(Clone, Debug, Default)]
pub struct Regs(pub HashMap<u32, u32>);

impl Regs {
    /// The register at `off`.
    pub fn get(&self, off: u32) -> u32 {
        self.0.get(&off).copied().unwrap_or(0)
    }

    /// Sets the register at `off`.
    pub fn set(&mut self, off: u32, value: u32) {
        self.0.insert(off, value);
    }
}

impl RegIo for Regs {
    fn read32(&mut self, off: u32) -> u32 {
        self.get(off)
    }

    fn write32(&mut self, off: u32, value: u32) {
        self.set(off, value);
    }

    fn delay_us(&mut self, _us: u32) {}
}

/// Guest memory: `bytes` at IOVA `base` and up; a read outside it fails.
#[derive(Clone, Debug)]
pub struct Mem {
    /// The IOVA of `bytes[0]`.
    pub base: u64,
    /// The memory.
    pub bytes: Vec<u8>,
}

impl Mem {
    /// `len` zero bytes at `base`.
    pub fn new(base: u64, len: usize) -> Mem {
        Mem {
            base,
            bytes: vec![0; len],
        }
    }

    /// The bytes of `iova..iova + len`, when all of them are inside.
    fn range(&self, iova: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let off = usize::try_from(iova.checked_sub(self.base)?).ok()?;
        let end = off.checked_add(len)?;
        (end <= self.bytes.len()).then_some(off..end)
    }

    /// Reads `buf.len()` bytes at `iova`: false when they are not all
    /// inside.
    pub fn read_at(&self, iova: u64, buf: &mut [u8]) -> bool {
        match self.range(iova, buf.len()) {
            Some(r) => {
                buf.copy_from_slice(&self.bytes[r]);
                true
            }
            None => false,
        }
    }

    /// Writes `data` at `iova` (as the device's DMA does); what falls
    /// outside is dropped whole.
    pub fn write(&mut self, iova: u64, data: &[u8]) {
        if let Some(r) = self.range(iova, data.len()) {
            self.bytes[r].copy_from_slice(data);
        }
    }
}

impl DmaRead for Mem {
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        self.read_at(iova, buf)
    }
}

/// A handle to a model that the test keeps too: the code under test reads
/// and writes the model through it (as registers, as DMA, or both through
/// two clones), and the test drives the model between calls.
#[derive(Debug, Default)]
pub struct Shared<T>(pub Rc<RefCell<T>>);

impl<T> Shared<T> {
    /// A handle to `model`.
    pub fn new(model: T) -> Shared<T> {
        Shared(Rc::new(RefCell::new(model)))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Rc::clone(&self.0))
    }
}

impl<T: RegIo> RegIo for Shared<T> {
    fn read32(&mut self, off: u32) -> u32 {
        self.0.borrow_mut().read32(off)
    }

    fn write32(&mut self, off: u32, value: u32) {
        self.0.borrow_mut().write32(off, value);
    }

    fn delay_us(&mut self, us: u32) {
        self.0.borrow_mut().delay_us(us);
    }
}

impl<T: DmaRead> DmaRead for Shared<T> {
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        self.0.borrow_mut().read(iova, buf)
    }
}
