// SPDX-License-Identifier: GPL-2.0

//! A minimal igb-family VF driver in userspace, the "guest" of the tests and
//! demos: through VFIO it owns a VF, speaks the PF mailbox protocol the PF
//! requires (RESET, SET_MAC_ADDR), and runs one RX and one TX ring of
//! advanced descriptors with buffers in its DMA memory.
//!
//! Everything the driver knows lives in that DMA memory (ring indices and
//! counters in the first page), so copying the memory to another VF's
//! mapping at the same IOVA moves the guest, as QEMU moves a VM's RAM.
//!
//! Layout of the DMA memory (IOVA [`IOVA_BASE`] + offset):
//!
//! | offset    | what |
//! |-----------|------|
//! | 0x00000   | [`GuestState`] |
//! | 0x01000   | RX ring, [`RING_SIZE`] descriptors |
//! | 0x02000   | TX ring |
//! | 0x04000   | RX buffers, [`BUF_SIZE`] each |
//! | 0x24000   | TX buffers |
//!
//! The guest also records which pages of that memory its CPU wrote
//! ([`Guest::take_cpu_dirty`]), as KVM's dirty log tells a VMM: with the
//! device's DMA dirty log, that is every page a migration must copy again.

pub mod capability;
mod mailbox;
mod mem;
pub mod pf;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ivf_common::bits::{
    split_u64, AdvTxDesc, Ctrl, Dctl, DescType, Enable, RxDesc, RxDrop, Srrctl, DESC_LEN,
};
use ivf_common::regs::{QueueRegs, RegMap, IGB};
use ivf_vfio::{Bar, Device};

pub use ivf_common::bits::mta_hash;
pub use mailbox::MailboxError;
pub use mem::DmaMem;

/// Where the guest's memory sits in the VF's IOVA space.
pub const IOVA_BASE: u64 = 0x1000_0000;
/// Size of the guest's DMA memory.
pub const MEM_SIZE: usize = 0x80000;
/// Descriptors per ring.
pub const RING_SIZE: u32 = 64;
/// Bytes per packet buffer.
pub const BUF_SIZE: u32 = 2048;
/// Ethertype of test frames sent to the guest.
pub const ETHERTYPE_TO_GUEST: u16 = 0x88b5;
/// Ethertype of test frames the guest sends.
pub const ETHERTYPE_FROM_GUEST: u16 = 0x88b6;
/// Bytes of every test frame (header, sequence number, pattern).
pub const FRAME_LEN: usize = 128;

/// Offset of [`GuestState`] in the DMA memory.
pub const STATE_OFF: usize = 0;
/// Offset of the RX descriptor ring.
pub const RX_RING_OFF: usize = 0x1000;
/// Offset of the TX descriptor ring.
pub const TX_RING_OFF: usize = 0x2000;
/// Offset of the RX buffers; descriptor `i` owns [`rx_buf_off`]`(i)`.
pub const RX_BUF_OFF: usize = 0x4000;
/// Offset of the TX buffers.
pub const TX_BUF_OFF: usize = 0x24000;
/// Page size of the CPU dirty log (and of the layout above).
pub const PAGE_SIZE: usize = 4096;
/// Pages of the DMA memory.
pub const MEM_PAGES: usize = MEM_SIZE / PAGE_SIZE;
const DIRTY_WORDS: usize = MEM_PAGES.div_ceil(64);
const STATE_MAGIC: u64 = 0x5453_4555_4746_5649; // "IVFGUEST"

const MAP: &RegMap = &IGB;
/// SRRCTL: advanced one-buffer descriptors, 2 KiB buffers, drop when full.
const SRRCTL: Srrctl = Srrctl::new(DescType::AdvOneBuf, BUF_SIZE, RxDrop::WhenFull);
/// RXDCTL and TXDCTL of a running queue (thresholds 0).
const DCTL_ON: u32 = Dctl(0).with_enable(Enable::On).0;

/// The guest's bookkeeping, at offset 0 of its DMA memory.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestState {
    /// [`STATE_MAGIC`] once initialised.
    pub magic: u64,
    /// Next RX descriptor to look at.
    pub rx_next: u32,
    /// Next TX descriptor to fill.
    pub tx_next: u32,
    /// Frames received and verified.
    pub rx_count: u64,
    /// Frames sent.
    pub tx_count: u64,
    /// Sequence number the next received frame must carry.
    pub rx_seq: u64,
    /// Sequence number of the next frame to send.
    pub tx_seq: u64,
    /// Frames that failed verification.
    pub rx_bad: u64,
    /// The MAC address the PF gave us (low 6 bytes).
    pub mac: [u8; 8],
}

/// Offset of [`RxTally`] in the DMA memory (page 0, after [`GuestState`]).
pub const TALLY_OFF: usize = 64;

/// What [`Guest::poll_rx_tolerant`] counts besides [`GuestState`]'s
/// counters, at [`TALLY_OFF`] of the DMA memory (so it migrates too).
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RxTally {
    /// Frames never seen: the sum of the sequence gaps.
    pub lost: u64,
    /// Frames whose sequence number had been seen already (or older).
    pub duplicate: u64,
    /// Frames whose payload did not match their sequence number's pattern.
    pub corrupt: u64,
}

/// A `repr(C)` record of integers that the guest keeps in its DMA memory:
/// any bytes are a valid value.
///
/// # Safety
///
/// Implementors must be plain old data: `repr(C)`, integer fields only, no
/// padding that matters.
unsafe trait Record: Copy {}

// SAFETY: repr(C), u64/u32/u8 fields only.
unsafe impl Record for GuestState {}
// SAFETY: repr(C), u64 fields only.
unsafe impl Record for RxTally {}

/// A frame the guest received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Descriptor index it arrived in.
    pub desc: u32,
    /// Its sequence number.
    pub seq: u64,
    /// Whether the payload matched the pattern of its sequence number.
    pub intact: bool,
}

/// A test frame: destination, source, ethertype, then seq and pattern.
pub fn make_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, seq: u64) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f[14..22].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in f[22..].iter_mut().enumerate() {
        *b = pattern(seq, i);
    }
    f
}

fn pattern(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_mul(31).wrapping_add(i as u8) ^ 0x5a
}

/// A test frame tagged with VLAN `vid` (802.1Q tag after the source MAC).
pub fn make_tagged_frame(dst: [u8; 6], src: [u8; 6], vid: u16, seq: u64) -> Vec<u8> {
    let f = make_frame(dst, src, ETHERTYPE_TO_GUEST, seq);
    let mut t = Vec::with_capacity(FRAME_LEN + 4);
    t.extend_from_slice(&f[..12]);
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

/// Checks a received test frame (an 802.1Q tag, if any, is skipped);
/// returns its sequence number and whether every byte of the pattern is right.
pub fn check_frame(f: &[u8], ethertype: u16) -> Option<(u64, bool)> {
    let untagged;
    let f = if f.len() >= 16 && f[12..14] == [0x81, 0x00] {
        untagged = [&f[..12], &f[16..]].concat();
        &untagged[..]
    } else {
        f
    };
    if f.len() < FRAME_LEN || f[12..14] != ethertype.to_be_bytes() {
        return None;
    }
    let seq = u64::from_le_bytes(f[14..22].try_into().ok()?);
    let intact = f[22..FRAME_LEN]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == pattern(seq, i));
    Some((seq, intact))
}

/// Whether a received frame is another protocol's (its EtherType, after an
/// 802.1Q tag if any, is neither the test's nor garbled into it): such
/// frames are dropped, as a network stack drops what it does not speak.
fn is_foreign(f: &[u8]) -> bool {
    let at = if f.len() >= 16 && f[12..14] == [0x81, 0x00] {
        16
    } else {
        12
    };
    f.len() >= at + 2
        && f[at..at + 2] != ETHERTYPE_TO_GUEST.to_be_bytes()
        && f[at..at + 2] != ETHERTYPE_FROM_GUEST.to_be_bytes()
}

/// Why the guest could not do something.
#[derive(Debug)]
pub enum GuestError {
    /// A VFIO call failed.
    Vfio(ivf_vfio::Error),
    /// The PF mailbox exchange failed.
    Mailbox(MailboxError),
    /// Memory copied from another guest is not a guest's.
    NotAGuest,
    /// A transmit did not complete.
    TxTimeout {
        /// The descriptor.
        desc: u32,
    },
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestError::Vfio(e) => write!(f, "{e}"),
            GuestError::Mailbox(e) => write!(f, "mailbox: {e}"),
            GuestError::NotAGuest => write!(f, "the memory holds no guest state"),
            GuestError::TxTimeout { desc } => write!(f, "TX descriptor {desc} not written back"),
        }
    }
}

impl std::error::Error for GuestError {}

impl From<ivf_vfio::Error> for GuestError {
    fn from(e: ivf_vfio::Error) -> Self {
        GuestError::Vfio(e)
    }
}

impl From<MailboxError> for GuestError {
    fn from(e: MailboxError) -> Self {
        GuestError::Mailbox(e)
    }
}

/// Queue 0's ring at `ring_off` of the DMA memory, disabled, empty.
fn program_ring(b: &Bar, regs: &QueueRegs, ring_off: usize) {
    let base = IOVA_BASE + ring_off as u64;
    b.write32(regs.dctl as usize, 0);
    let (lo, hi) = split_u64(base);
    b.write32(regs.bal as usize, lo);
    b.write32(regs.bah as usize, hi);
    b.write32(regs.len as usize, RING_SIZE * DESC_LEN as u32);
    b.write32(regs.head as usize, 0);
    b.write32(regs.tail as usize, 0);
}

/// The PF handshake alone (CTRL.RST, RESET, then SET_MAC_ADDR of `mac`
/// or of the PF's or our own choice), as a VF driver does after a reset;
/// returns the MAC in force. Touches only BAR0, not DMA memory.
pub fn pf_handshake(dev: &Device, mac: Option<[u8; 6]>) -> Result<[u8; 6], GuestError> {
    let bar = dev.map_bar(0)?;
    let ctrl = bar.read32(MAP.ctrl as usize);
    bar.write32(MAP.ctrl as usize, Ctrl(ctrl).with_rst().0);
    let pf_mac = mailbox::reset(&bar)?;
    let mac = match (mac, pf_mac) {
        (None, Some(m)) => return Ok(m),
        (Some(m), _) => m,
        // The PF assigned none: a locally administered address of our own,
        // from the VF's PCI address, as igbvf picks a random one.
        (None, None) => {
            let b = dev.bdf();
            [0x02, 0x49, 0x56, b.bus, b.dev, b.func]
        }
    };
    mailbox::set_mac(&bar, mac)?;
    Ok(mac)
}

/// A set of pages of the DMA memory (the CPU dirty log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PageSet([u64; DIRTY_WORDS]);

impl PageSet {
    /// Adds the pages of `len` bytes at offset `off` (clipped to the memory).
    fn mark(&mut self, off: usize, len: usize) {
        if len == 0 || off >= MEM_SIZE {
            return;
        }
        let last = (off + len - 1).min(MEM_SIZE - 1) / PAGE_SIZE;
        for page in off / PAGE_SIZE..=last {
            self.0[page / 64] |= 1 << (page % 64);
        }
    }

    /// The pages, ascending; empties the set.
    fn take(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for (w, word) in self.0.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                out.push(w * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        out
    }
}

/// Offset in the DMA memory of RX descriptor `i`'s buffer.
pub const fn rx_buf_off(i: u32) -> usize {
    RX_BUF_OFF + (i * BUF_SIZE) as usize
}

/// The device a guest runs on: borrowed (the samples), or shared with a
/// VMM that moves the guest between threads ([`Guest::start_shared`]).
enum DevRef<'d> {
    Borrowed(&'d Device),
    Shared(Arc<Device>),
}

impl std::ops::Deref for DevRef<'_> {
    type Target = Device;
    fn deref(&self) -> &Device {
        match self {
            DevRef::Borrowed(d) => d,
            DevRef::Shared(d) => d,
        }
    }
}

/// The guest driver bound to one VF.
pub struct Guest<'d> {
    dev: DevRef<'d>,
    bar: Bar,
    mem: DmaMem,
    /// Pages of `mem` the CPU wrote since the last [`Guest::take_cpu_dirty`].
    cpu_dirty: PageSet,
    /// Whether [`Guest::poll_rx`] gives descriptors back with one RDT write
    /// per poll instead of one per descriptor.
    rx_batched: bool,
    /// Frames of other protocols dropped since this guest object began.
    foreign: u64,
}

impl<'d> Guest<'d> {
    /// Brings up a fresh guest on `dev`: DMA memory, PF handshake (RESET,
    /// and SET_MAC_ADDR when `mac` is given), rings, buffers, queues on.
    pub fn start(dev: &'d Device, mac: Option<[u8; 6]>) -> Result<Self, GuestError> {
        Guest::start_on(DevRef::Borrowed(dev), mac)
    }

    fn start_on(dev: DevRef<'d>, mac: Option<[u8; 6]>) -> Result<Self, GuestError> {
        let bar = dev.map_bar(0)?;
        let mem = DmaMem::new(MEM_SIZE)?;
        dev.dma_map(mem.as_ptr(), MEM_SIZE as u64, IOVA_BASE)?;
        dev.enable_bus_master()?;
        let mac = pf_handshake(&dev, mac)?;
        let mut g = Guest::new(dev, bar, mem);
        let mut st = GuestState {
            magic: STATE_MAGIC,
            ..GuestState::default()
        };
        st.mac[..6].copy_from_slice(&mac);
        g.set_state(st);
        g.setup_rings();
        Ok(g)
    }

    /// Takes over a migrated guest: `memory` is the source guest's DMA
    /// memory, mapped here at the same IOVA. The device's registers are the
    /// migration driver's to restore; only the command register is set (Bus
    /// Master), as a VMM restores config space itself.
    pub fn adopt(dev: &'d Device, memory: &[u8]) -> Result<Self, GuestError> {
        Guest::adopt_on(DevRef::Borrowed(dev), memory)
    }

    fn adopt_on(dev: DevRef<'d>, memory: &[u8]) -> Result<Self, GuestError> {
        let bar = dev.map_bar(0)?;
        let mut mem = DmaMem::new(MEM_SIZE)?;
        mem.bytes_mut().copy_from_slice(memory);
        let mut g = Guest::new(dev, bar, mem);
        g.mark_cpu_dirty(0, MEM_SIZE);
        if g.state().magic != STATE_MAGIC {
            return Err(GuestError::NotAGuest);
        }
        g.dev.dma_map(g.mem.as_ptr(), MEM_SIZE as u64, IOVA_BASE)?;
        g.dev.enable_bus_master()?;
        Ok(g)
    }

    fn new(dev: DevRef<'d>, bar: Bar, mem: DmaMem) -> Self {
        Guest {
            dev,
            bar,
            mem,
            cpu_dirty: PageSet::default(),
            rx_batched: false,
            foreign: 0,
        }
    }

    /// Records a CPU write of `len` bytes at offset `off` of the DMA memory.
    fn mark_cpu_dirty(&mut self, off: usize, len: usize) {
        self.cpu_dirty.mark(off, len);
    }

    /// The pages (indices into the DMA memory, ascending) the guest's CPU
    /// wrote since the last call, which clears the record. A VMM learns the
    /// same from KVM's dirty log; the device's DMA writes are not in it.
    pub fn take_cpu_dirty(&mut self) -> Vec<usize> {
        self.cpu_dirty.take()
    }

    /// Whether [`Guest::poll_rx`] gives the descriptors of one poll back
    /// with a single RDT write (`true`), or each with its own (`false`, the
    /// default, as the samples were written).
    pub fn set_rx_batched(&mut self, batched: bool) {
        self.rx_batched = batched;
    }

    fn setup_rings(&mut self) {
        for i in 0..RING_SIZE {
            self.arm_rx(i);
        }
        let b = &self.bar;
        let (r, t) = (&MAP.rx, &MAP.tx);
        program_ring(b, &r.ring(), RX_RING_OFF);
        b.write32(r.srrctl as usize, SRRCTL.0);
        program_ring(b, &t.ring(), TX_RING_OFF);
        b.write32(r.dctl as usize, DCTL_ON);
        b.write32(t.dctl as usize, DCTL_ON);
        // Post every descriptor but one (a full ring would read as empty).
        b.write32(r.tail as usize, RING_SIZE - 1);
    }

    /// Asks the PF to accept multicast address `group` (by its MTA hash).
    pub fn join_multicast(&mut self, group: [u8; 6]) -> Result<(), GuestError> {
        Ok(mailbox::set_multicast(&self.bar, &[mta_hash(group)])?)
    }

    /// Asks the PF to deliver unicast `mac` to this VF too (igb's extra
    /// MAC filter).
    pub fn add_mac_filter(&mut self, mac: [u8; 6]) -> Result<(), GuestError> {
        Ok(mailbox::add_mac_filter(&self.bar, mac)?)
    }

    /// Asks the PF to add VLAN `vid` to this VF's filters.
    pub fn add_vlan(&mut self, vid: u16) -> Result<(), GuestError> {
        Ok(mailbox::add_vlan(&self.bar, vid)?)
    }

    /// A plain-old-data record at `off` of the DMA memory.
    fn read_record<T: Record>(&self, off: usize) -> T {
        let bytes = &self.mem.bytes()[off..off + size_of::<T>()];
        // SAFETY: `T` is plain old data (`Record`) of exactly these bytes.
        unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) }
    }

    /// Writes a record at `off` (the CPU dirty log records its page).
    fn write_record<T: Record>(&mut self, off: usize, value: T) {
        self.mark_cpu_dirty(off, size_of::<T>());
        let bytes = &mut self.mem.bytes_mut()[off..off + size_of::<T>()];
        // SAFETY: as in `read_record`.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr().cast(), value) }
    }

    /// The guest's bookkeeping.
    pub fn state(&self) -> GuestState {
        self.read_record(STATE_OFF)
    }

    fn set_state(&mut self, st: GuestState) {
        self.write_record(STATE_OFF, st);
    }

    /// The guest's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.state().mac[..6].try_into().expect("6 bytes")
    }

    fn desc(&self, ring_off: usize, i: u32) -> &[u8] {
        let o = ring_off + i as usize * DESC_LEN;
        &self.mem.bytes()[o..o + DESC_LEN]
    }

    /// A descriptor to write (the CPU dirty log records its page).
    fn desc_mut(&mut self, ring_off: usize, i: u32) -> &mut [u8] {
        let o = ring_off + i as usize * DESC_LEN;
        self.mark_cpu_dirty(o, DESC_LEN);
        &mut self.mem.bytes_mut()[o..o + DESC_LEN]
    }

    fn arm_rx(&mut self, i: u32) {
        self.set_rx_desc(i, IOVA_BASE + rx_buf_off(i) as u64);
    }

    /// Writes RX descriptor `i` (modulo the ring) as a read descriptor for
    /// a buffer at `addr`, without posting it. The driver only ever uses its
    /// own buffers; tests of hostile guests point descriptors anywhere.
    pub fn set_rx_desc(&mut self, i: u32, addr: u64) {
        self.set_rx_desc_hdr(i, addr, 0);
    }

    /// As [`Guest::set_rx_desc`], with `hdr` as the header buffer word,
    /// which one-buffer descriptors leave unused. A hostile guest sets bit
    /// 0 there: it reads as DD in the advanced write-back format.
    pub fn set_rx_desc_hdr(&mut self, i: u32, addr: u64, hdr: u64) {
        let d = self.desc_mut(RX_RING_OFF, i % RING_SIZE);
        d.copy_from_slice(&RxDesc::read(addr, hdr).to_bytes());
    }

    /// Re-arms every RX descriptor with its own buffer (not posted).
    pub fn rearm_rx_ring(&mut self) {
        for i in 0..RING_SIZE {
            self.arm_rx(i);
        }
    }

    /// Processes every received descriptor; re-arms and re-posts each (one
    /// RDT write each, or one for the poll: [`Guest::set_rx_batched`]).
    pub fn poll_rx(&mut self) -> Vec<Received> {
        self.poll_rx_with(false)
    }

    /// [`Guest::poll_rx`] for a guest that tolerates loss, as one under a
    /// live migration must: a sequence gap is counted in [`RxTally::lost`]
    /// and the frame after it accepted; a frame seen already (or older) is
    /// a duplicate, one with a wrong payload corrupt: both count in
    /// `rx_bad` and in the tally, and come back with `intact` false.
    pub fn poll_rx_tolerant(&mut self) -> Vec<Received> {
        self.poll_rx_with(true)
    }

    /// The loss, duplicate and corruption counts of
    /// [`Guest::poll_rx_tolerant`].
    pub fn tally(&self) -> RxTally {
        self.read_record(TALLY_OFF)
    }

    fn set_tally(&mut self, t: RxTally) {
        self.write_record(TALLY_OFF, t);
    }

    fn poll_rx_with(&mut self, tolerant: bool) -> Vec<Received> {
        let mut out = Vec::new();
        let mut st = self.state();
        let mut tally = self.tally();
        loop {
            let i = st.rx_next;
            let d = RxDesc::from_bytes(self.desc(RX_RING_OFF, i));
            if !d.done(SRRCTL.desc_type()) {
                break; // DD clear: not written back yet
            }
            let len = d.adv_length() as usize;
            let off = RX_BUF_OFF + (i * BUF_SIZE) as usize;
            let frame = &self.mem.bytes()[off..off + len.min(BUF_SIZE as usize)];
            if is_foreign(frame) {
                // Not a test frame (the driver's announce, the PF's own
                // broadcasts): a network stack drops it, so does this one.
                self.foreign += 1;
                self.arm_rx(i);
                st.rx_next = (i + 1) % RING_SIZE;
                self.set_state(st);
                if !self.rx_batched {
                    self.bar.write32(MAP.rx.tail as usize, i);
                }
                continue;
            }
            let (seq, intact) = check_frame(frame, ETHERTYPE_TO_GUEST).unwrap_or((u64::MAX, false));
            let intact = if !tolerant {
                intact && seq == st.rx_seq
            } else if !intact {
                tally.corrupt += 1;
                false
            } else if seq < st.rx_seq {
                tally.duplicate += 1;
                false
            } else {
                tally.lost += seq - st.rx_seq;
                st.rx_seq = seq;
                true
            };
            if intact {
                st.rx_count += 1;
                st.rx_seq += 1;
            } else {
                st.rx_bad += 1;
            }
            out.push(Received {
                desc: i,
                seq,
                intact,
            });
            self.arm_rx(i);
            st.rx_next = (i + 1) % RING_SIZE;
            // Give the descriptor back: the tail trails the next one to read.
            self.set_state(st);
            if !self.rx_batched {
                self.bar.write32(MAP.rx.tail as usize, i);
            }
        }
        self.set_state(st);
        if tolerant && !out.is_empty() {
            self.set_tally(tally);
        }
        if self.rx_batched {
            if let Some(last) = out.last() {
                self.bar.write32(MAP.rx.tail as usize, last.desc);
            }
        }
        out
    }

    /// Frames of other protocols this guest dropped (announces, the PF's
    /// broadcasts), since it started or was adopted here.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Waits up to `timeout` for `n` frames.
    pub fn receive(&mut self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < n && start.elapsed() < timeout {
            let more = self.poll_rx();
            if more.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            got.extend(more);
        }
        got
    }

    /// Sends one test frame to `dst` and waits for its write-back; returns
    /// its sequence number.
    pub fn send(&mut self, dst: [u8; 6]) -> Result<u64, GuestError> {
        let (i, seq) = self.post_tx(dst);
        self.wait_tx(i)?;
        Ok(seq)
    }

    /// Waits for TX descriptor `i` to be written back.
    pub fn wait_tx(&mut self, i: u32) -> Result<(), GuestError> {
        let start = Instant::now();
        loop {
            if AdvTxDesc::done(self.desc(TX_RING_OFF, i)) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(2) {
                return Err(GuestError::TxTimeout { desc: i });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Whether [`Guest::post_tx`] may reuse the next TX descriptor: never
    /// used yet, or written back.
    pub fn tx_slot_free(&self) -> bool {
        let st = self.state();
        if st.tx_count < u64::from(RING_SIZE) {
            return true;
        }
        AdvTxDesc::done(self.desc(TX_RING_OFF, st.tx_next))
    }

    /// Brings the device back under the guest after a reset of the VF
    /// (VFIO_DEVICE_RESET, FLR) took its registers and the PF's filters,
    /// as a VF driver's reset handler does: CTRL.RST, mailbox RESET and
    /// SET_MAC_ADDR of the guest's MAC, Bus Master, then both rings where
    /// the guest's state says it is (frames the device had written but the
    /// guest had not read are given up: a loss, not a corruption).
    pub fn recover_after_reset(&mut self) -> Result<(), GuestError> {
        let mac = self.mac();
        pf_handshake(&self.dev, Some(mac))?;
        self.dev.enable_bus_master()?;
        let st = self.state();
        self.rearm_rx_ring();
        let b = &self.bar;
        let (r, t) = (&MAP.rx, &MAP.tx);
        program_ring(b, &r.ring(), RX_RING_OFF);
        b.write32(r.srrctl as usize, SRRCTL.0);
        program_ring(b, &t.ring(), TX_RING_OFF);
        b.write32(r.head as usize, st.rx_next);
        b.write32(t.head as usize, st.tx_next);
        b.write32(t.tail as usize, st.tx_next);
        b.write32(r.dctl as usize, DCTL_ON);
        b.write32(t.dctl as usize, DCTL_ON);
        b.write32(r.tail as usize, (st.rx_next + RING_SIZE - 1) % RING_SIZE);
        Ok(())
    }

    /// Whether the guest's RX queue is enabled in the device (a reset
    /// clears it).
    pub fn rx_enabled(&self) -> bool {
        Dctl(self.bar.read32(MAP.rx.dctl as usize)).enabled()
    }

    /// Whether TX descriptor `i` has been written back (sent).
    pub fn tx_done(&mut self, i: u32) -> bool {
        AdvTxDesc::done(self.desc(TX_RING_OFF, i))
    }

    /// Posts one test frame to `dst` (TDT write) without waiting; returns
    /// the descriptor index and sequence number.
    pub fn post_tx(&mut self, dst: [u8; 6]) -> (u32, u64) {
        let mut st = self.state();
        let i = st.tx_next;
        let frame = make_frame(dst, self.mac(), ETHERTYPE_FROM_GUEST, st.tx_seq);
        let off = TX_BUF_OFF + (i * BUF_SIZE) as usize;
        self.mark_cpu_dirty(off, FRAME_LEN);
        self.mem.bytes_mut()[off..off + FRAME_LEN].copy_from_slice(&frame);
        let addr = IOVA_BASE + off as u64;
        let d = self.desc_mut(TX_RING_OFF, i);
        d.copy_from_slice(&AdvTxDesc::frame(addr, FRAME_LEN as u32).to_bytes());
        st.tx_next = (i + 1) % RING_SIZE;
        let seq = st.tx_seq;
        st.tx_seq += 1;
        st.tx_count += 1;
        self.set_state(st);
        self.bar.write32(MAP.tx.tail as usize, st.tx_next);
        (i, seq)
    }

    /// The guest's DMA memory, as the device and the driver left it.
    pub fn memory(&self) -> &[u8] {
        self.mem.bytes()
    }

    /// The BAR0 mapping (for tests that look at registers).
    pub fn bar(&self) -> &Bar {
        &self.bar
    }

    /// The device this guest runs on.
    pub fn device(&self) -> &Device {
        &self.dev
    }
}

impl Guest<'static> {
    /// [`Guest::start`] on a device the guest shares (a VMM moves such a
    /// guest to its vCPU thread; the device closes with its last owner).
    pub fn start_shared(dev: Arc<Device>, mac: Option<[u8; 6]>) -> Result<Self, GuestError> {
        Guest::start_on(DevRef::Shared(dev), mac)
    }

    /// [`Guest::adopt`] on a device the guest shares.
    pub fn adopt_shared(dev: Arc<Device>, memory: &[u8]) -> Result<Self, GuestError> {
        Guest::adopt_on(DevRef::Shared(dev), memory)
    }
}

impl Drop for Guest<'_> {
    /// The guest goes away: its memory leaves the device's IOMMU mapping.
    fn drop(&mut self) {
        let _ = self.dev.dma_unmap(MEM_SIZE as u64, IOVA_BASE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_set_marks_every_page_a_write_touches() {
        let mut set = PageSet::default();
        set.mark(STATE_OFF, size_of::<GuestState>());
        set.mark(RX_RING_OFF + 63 * 16, 16);
        set.mark(PAGE_SIZE * 5 - 1, 2);
        set.mark(MEM_SIZE - 1, 100);
        set.mark(MEM_SIZE, 10);
        set.mark(7, 0);
        assert_eq!(set.take(), vec![0, 1, 4, 5, MEM_PAGES - 1]);
        assert!(set.take().is_empty(), "take empties the set");
        set.mark(0, MEM_SIZE);
        assert_eq!(set.take(), (0..MEM_PAGES).collect::<Vec<_>>());
    }

    #[test]
    fn layout_is_unchanged() {
        assert_eq!(size_of::<GuestState>(), 64);
        assert_eq!(TALLY_OFF, STATE_OFF + size_of::<GuestState>());
        assert!(TALLY_OFF + size_of::<RxTally>() <= RX_RING_OFF);
        assert_eq!(rx_buf_off(RING_SIZE - 1) + BUF_SIZE as usize, TX_BUF_OFF);
        assert!(TX_BUF_OFF + (RING_SIZE * BUF_SIZE) as usize <= MEM_SIZE);
        assert_eq!(MEM_PAGES, 128);
    }
}
