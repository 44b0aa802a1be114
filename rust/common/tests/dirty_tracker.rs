// SPDX-License-Identifier: GPL-2.0

//! The dirty tracker against a model VF that receives into guest memory:
//! whatever a guest driver posts and however reports interleave, copying
//! the reported pages (plus what the guest's CPU wrote, as a VMM gets from
//! KVM) reproduces the guest memory byte for byte. Hostile guests fall back
//! to "all dirty" and cost bounded work.

use std::collections::BTreeSet;

use ivf_common::dirty::{self, LoggedRange, Range};
use ivf_common::hal::RegIo;
use ivf_common::regs::{RegMap, DCTL_ENABLE, IGB, IXGBE};
use ivf_common::tracker::{DmaRead, Slot, Taint, Tracker, MAX_SLOTS};
use proptest::prelude::*;

mod support;
use support::io::{Mem, Regs, Shared};

const PAGE: u64 = 4096;
const BASE: u64 = 0x1000_0000;
const PAGES: u64 = 48;
const RING_OFF: u64 = 0x1000;
const TX_RING_OFF: u64 = 0x2000;
const BUF_OFF: u64 = 0x4000;
const BUF: u64 = 2048;

/// The model VF: registers and the guest memory it writes by DMA.
struct Nic {
    map: &'static RegMap,
    regs: Regs,
    /// Guest memory, from IOVA `BASE`.
    mem: Mem,
    /// Next byte value the device writes (payloads differ every time).
    stamp: u8,
}

impl Nic {
    fn reg(&self, off: u32) -> u32 {
        self.regs.get(off)
    }

    /// The device receives one frame of `len` bytes on queue 0, if a
    /// descriptor is posted and the queue is on.
    fn receive(&mut self, len: usize) -> bool {
        self.dma_in(len, true)
    }

    /// As `receive`, but stops after the data: a frame still in flight
    /// (written into the buffer, no write-back, head unmoved).
    fn dma_in(&mut self, len: usize, finish: bool) -> bool {
        let m = self.map;
        if self.reg(m.rx.dctl) & DCTL_ENABLE == 0 {
            return false;
        }
        let (head, tail) = (self.reg(m.rx.head), self.reg(m.rx.tail));
        let count = self.reg(m.rx.len) / 16;
        if head == tail || count == 0 {
            return false;
        }
        let ring = u64::from(self.reg(m.rx.bal)) | (u64::from(self.reg(m.rx.bah)) << 32);
        let d = ring + u64::from(head) * 16;
        let mut desc = [0u8; 16];
        self.mem.read_at(d, &mut desc);
        let addr = u64::from_le_bytes(desc[0..8].try_into().unwrap());
        self.stamp = self.stamp.wrapping_add(1);
        let payload = vec![self.stamp; len];
        self.mem.write(addr, &payload);
        if !finish {
            return true;
        }
        // Write-back: the address is overwritten (RSS hash), DD set.
        let mut wb = [0u8; 16];
        wb[0..8].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
        wb[8] = 1;
        wb[12..14].copy_from_slice(&(len as u16).to_le_bytes());
        self.mem.write(d, &wb);
        self.regs.set(m.rx.head, (head + 1) % count);
        true
    }
}

/// The code under test reaches the model VF through this handle.
type Io = Shared<Nic>;

impl RegIo for Nic {
    fn read32(&mut self, off: u32) -> u32 {
        self.regs.read32(off)
    }
    fn write32(&mut self, off: u32, value: u32) {
        self.regs.write32(off, value);
    }
    fn delay_us(&mut self, _us: u32) {}
}

impl DmaRead for Nic {
    fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        self.mem.read_at(iova, buf)
    }
}

/// The guest: its driver posts buffers, its CPU writes are logged here
/// (the VMM's KVM dirty log).
struct Guest {
    io: Io,
    count: u32,
    next: u32,
    cpu_dirty: BTreeSet<u64>,
}

impl Guest {
    fn new(io: &Io, count: u32) -> Guest {
        Guest {
            io: io.clone(),
            count,
            next: 0,
            cpu_dirty: BTreeSet::new(),
        }
    }

    fn cpu_write(&mut self, iova: u64, data: &[u8]) {
        self.io.0.borrow_mut().mem.write(iova, data);
        self.cpu_dirty.insert((iova - BASE) / PAGE);
        self.cpu_dirty
            .insert((iova + data.len() as u64 - 1 - BASE) / PAGE);
    }

    fn arm(&mut self, i: u32, buf: u64) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&(BASE + BUF_OFF + buf * BUF).to_le_bytes());
        self.cpu_write(BASE + RING_OFF + u64::from(i) * 16, &d);
    }

    /// Registers written through the tracker, as the trapped page is.
    fn write_reg(&mut self, t: Option<&mut T>, off: u32, value: u32) {
        match t {
            Some(t) if off / 4096 == IGB.rx_tail_page() => {
                let mut io = self.io.clone();
                let mut dma = self.io.clone();
                t.rx_write(&mut io, &mut dma, off, value);
            }
            _ => self.io.write32(off, value),
        }
    }

    fn setup(&mut self, map: &RegMap, mut t: Option<&mut T>) {
        for i in 0..self.count {
            self.arm(i, u64::from(i));
        }
        let r = &map.rx;
        for (off, v) in [
            (r.dctl, 0),
            (r.bal, (BASE + RING_OFF) as u32),
            (r.bah, 0),
            (r.len, self.count * 16),
            (r.head, 0),
            (r.tail, 0),
            (r.srrctl, 0x0200_0002),
            (r.dctl, DCTL_ENABLE),
            (r.tail, self.count - 1),
        ] {
            self.write_reg(t.as_deref_mut(), off, v);
        }
        let t = &map.tx;
        self.io.write32(t.bal, (BASE + TX_RING_OFF) as u32);
        self.io.write32(t.len, 16 * 16);
        self.io.write32(t.dctl, DCTL_ENABLE);
    }

    /// Takes what the device wrote back, re-arms with buffer `pick(i)`,
    /// posts with one tail write per descriptor or one per batch.
    fn poll(&mut self, t: &mut Option<T>, pick: &mut impl FnMut() -> u64, batched: bool) {
        let mut last = None;
        loop {
            let mut d = [0u8; 16];
            let at = BASE + RING_OFF + u64::from(self.next) * 16;
            self.io.0.borrow().mem.read_at(at, &mut d);
            if d[8] & 1 == 0 {
                break;
            }
            let buf = pick();
            self.arm(self.next, buf);
            last = Some(self.next);
            if !batched {
                self.write_reg(t.as_mut(), IGB.rx.tail, self.next);
            }
            self.next = (self.next + 1) % self.count;
        }
        if let (true, Some(l)) = (batched, last) {
            self.write_reg(t.as_mut(), IGB.rx.tail, l);
        }
    }
}

type T = Tracker<Vec<LoggedRange>, Vec<u64>, Vec<Slot>>;

fn start(io: &Io, map: &'static RegMap, ranges: &[Range], page: u64) -> T {
    let mut ranges: Vec<LoggedRange> = ranges
        .iter()
        .map(|&range| LoggedRange {
            range,
            first_bit: 0,
        })
        .collect();
    let (page, words) = dirty::check(&mut ranges, page).unwrap();
    let (mut a, mut b) = (io.clone(), io.clone());
    T::start(
        map,
        ranges,
        page,
        vec![0; words],
        vec![Slot::default(); T::slots_needed(map)],
        &mut a,
        &mut b,
    )
    .unwrap()
}

fn whole() -> Vec<Range> {
    vec![Range {
        iova: BASE,
        len: PAGES * PAGE,
    }]
}

fn report(t: &mut T, io: &Io) -> BTreeSet<u64> {
    let mut pages = BTreeSet::new();
    let (mut a, mut b) = (io.clone(), io.clone());
    t.report(&mut a, &mut b, 0, u64::MAX - 1, |iova, len| {
        assert!(len > 0);
        for p in (iova - BASE) / PAGE..=(iova + len - 1 - BASE) / PAGE {
            pages.insert(p);
        }
    });
    pages
}

fn nic(map: &'static RegMap) -> Io {
    Shared::new(Nic {
        map,
        regs: Regs::default(),
        mem: Mem::new(BASE, (PAGES * PAGE) as usize),
        stamp: 0,
    })
}

#[derive(Debug, Clone)]
enum Op {
    Receive(usize, usize),
    Poll(bool),
    Report,
    InFlight(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..40, 60usize..2048).prop_map(|(n, l)| Op::Receive(n, l)),
        4 => any::<bool>().prop_map(Op::Poll),
        1 => Just(Op::Report),
        1 => (60usize..2048).prop_map(Op::InFlight),
    ]
}

/// The VMM's iterative copy: returns (differing pages at the end, rounds'
/// precision numerators and denominators).
fn migrate(ops: &[Op], count: u32, seed: u64, log_early: bool) -> (usize, u64, u64) {
    let io = nic(&IGB);
    let mut g = Guest::new(&io, count);
    let mut t: Option<T> = None;
    if log_early {
        t = Some(start(&io, &IGB, &whole(), PAGE));
    }
    g.setup(&IGB, t.as_mut());
    if t.is_none() {
        t = Some(start(&io, &IGB, &whole(), PAGE));
    }
    let mut shadow = io.0.borrow().mem.bytes.clone();
    g.cpu_dirty.clear();
    let mut rng = seed;
    let mut pick = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % 64
    };
    let (mut changed, mut reported) = (0, 0);
    let mut copy = |g: &mut Guest, pages: BTreeSet<u64>, shadow: &mut Vec<u8>, count_it: bool| {
        let mem = io.0.borrow().mem.bytes.clone();
        for &p in &pages {
            let r = (p * PAGE) as usize..((p + 1) * PAGE) as usize;
            if count_it {
                reported += 1;
                if shadow[r.clone()] != mem[r.clone()] {
                    changed += 1;
                }
            }
            shadow[r.clone()].copy_from_slice(&mem[r]);
        }
        for p in std::mem::take(&mut g.cpu_dirty) {
            let r = (p * PAGE) as usize..((p + 1) * PAGE) as usize;
            shadow[r.clone()].copy_from_slice(&mem[r]);
        }
    };
    for op in ops {
        match op {
            Op::Receive(n, len) => {
                for _ in 0..*n {
                    io.0.borrow_mut().receive(*len);
                }
            }
            Op::Poll(batched) => g.poll(&mut t, &mut pick, *batched),
            Op::InFlight(len) => {
                io.0.borrow_mut().dma_in(*len, false);
            }
            Op::Report => {
                let pages = report(t.as_mut().unwrap(), &io);
                copy(&mut g, pages, &mut shadow, true);
            }
        }
    }
    // Stop the device (the quiesce disables the queue), last report, copy.
    io.0.borrow_mut().regs.set(IGB.rx.dctl, 0);
    let pages = report(t.as_mut().unwrap(), &io);
    copy(&mut g, pages, &mut shadow, false);
    let mem = io.0.borrow().mem.bytes.clone();
    let differing = (0..PAGES)
        .filter(|p| {
            let r = (p * PAGE) as usize..((p + 1) * PAGE) as usize;
            shadow[r.clone()] != mem[r]
        })
        .count();
    let tr = t.unwrap();
    assert_eq!(tr.taint(), None, "an honest guest never taints");
    assert!(tr.stats.max_descriptors_per_trap < count);
    (differing, changed, reported)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn iterative_copy_is_exact(
        ops in proptest::collection::vec(op(), 1..120),
        small in any::<bool>(),
        seed in any::<u64>(),
        early in any::<bool>(),
    ) {
        let count = if small { 8 } else { 64 };
        let (differing, _, _) = migrate(&ops, count, seed, early);
        prop_assert_eq!(differing, 0);
    }
}

#[test]
fn steady_traffic_precision() {
    // Rounds of 500 frames through a 64-slot ring, posted one by one.
    let mut ops = Vec::new();
    for _ in 0..10 {
        for _ in 0..25 {
            ops.push(Op::Receive(20, 1500));
            ops.push(Op::Poll(false));
        }
        ops.push(Op::Report);
    }
    let (differing, changed, reported) = migrate(&ops, 64, 7, false);
    assert_eq!(differing, 0);
    let precision = changed as f64 / reported as f64;
    assert!(precision >= 0.9, "precision {precision}");
}

#[test]
fn bitmap_page_size_and_windows() {
    let io = nic(&IGB);
    let ranges = [
        Range {
            iova: BASE,
            len: 4 * PAGE,
        },
        Range {
            iova: BASE + 8 * PAGE,
            len: 2 * PAGE,
        },
    ];
    let mut t = start(&io, &IGB, &ranges, PAGE);
    t.mark(BASE + PAGE - 1, 2); // pages 0 and 1
    t.mark(BASE + 5 * PAGE, 10); // not logged
    t.mark(BASE + 9 * PAGE, 1);
    let mut got = Vec::new();
    let (mut a, mut b) = (io.clone(), io.clone());
    // A window covering only the first page: the others stay.
    t.report(&mut a, &mut b, BASE, PAGE, |i, l| got.push((i, l)));
    assert_eq!(got, vec![(BASE, PAGE)]);
    got.clear();
    t.report(&mut a, &mut b, 0, u64::MAX - 1, |i, l| got.push((i, l)));
    assert_eq!(got, vec![(BASE + PAGE, PAGE), (BASE + 9 * PAGE, PAGE)]);
    got.clear();
    t.report(&mut a, &mut b, 0, u64::MAX - 1, |i, l| got.push((i, l)));
    assert!(got.is_empty(), "a report clears what it returned");

    // A huge range: the bitmap stays bounded, the page size grows.
    let big = [Range {
        iova: 0,
        len: 1 << 46,
    }];
    assert_eq!(T::slots_needed(&IXGBE), 8 * MAX_SLOTS as usize);
    let t = start(&nic(&IXGBE), &IXGBE, &big, PAGE);
    assert_eq!(t.page_size(), 1 << 22);
}

#[test]
fn hostile_guest_taints_and_stays_bounded() {
    let io = nic(&IGB);
    let mut g = Guest::new(&io, 64);
    g.setup(&IGB, None);
    let mut t = Some(start(&io, &IGB, &whole(), PAGE));
    // Descriptors pointing anywhere, tails wrapping the ring fast.
    for i in 0..64 {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&(u64::MAX - i).to_le_bytes());
        g.cpu_write(BASE + RING_OFF + i * 16, &d);
    }
    for k in 0..10_000u32 {
        g.write_reg(t.as_mut(), IGB.rx.tail, k % 64);
    }
    let tr = t.as_mut().unwrap();
    assert!(tr.stats.max_descriptors_per_trap <= 63);
    assert!(matches!(tr.taint(), Some(Taint::BadTail(0, _))));
    // Tainted: everything logged is reported, every time.
    assert_eq!(report(tr, &io).len(), PAGES as usize);
    assert_eq!(report(tr, &io).len(), PAGES as usize);

    // A tail past the ring taints too.
    let io = nic(&IGB);
    let mut g = Guest::new(&io, 64);
    g.setup(&IGB, None);
    let mut t = Some(start(&io, &IGB, &whole(), PAGE));
    g.write_reg(t.as_mut(), IGB.rx.tail, 5000);
    assert_eq!(t.unwrap().taint(), Some(Taint::BadTail(0, 5000)));

    // A ring the IOMMU cannot read taints.
    let io = nic(&IGB);
    let mut g = Guest::new(&io, 64);
    g.setup(&IGB, None);
    let mut t = Some(start(&io, &IGB, &whole(), PAGE));
    g.write_reg(t.as_mut(), IGB.rx.dctl, 0);
    g.write_reg(t.as_mut(), IGB.rx.bal, 0x40);
    g.write_reg(t.as_mut(), IGB.rx.dctl, DCTL_ENABLE);
    g.write_reg(t.as_mut(), IGB.rx.tail, 3);
    assert!(matches!(
        t.unwrap().taint(),
        Some(Taint::Unreadable(0, 0x40))
    ));
}

#[test]
fn a_stopped_queue_owns_nothing_until_started() {
    // Queue 1 left stopped with 5 buffers posted (a previous driver's).
    let io = nic(&IGB);
    let mut g = Guest::new(&io, 64);
    g.setup(&IGB, None);
    let ring = BASE + 3 * PAGE;
    for i in 0..5u64 {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&(BASE + (40 + i) * PAGE).to_le_bytes());
        g.cpu_write(ring + i * 16, &d);
    }
    let w = |off: u32, v: u32| g.io.clone().write32(IGB.rxq(off, 1), v);
    w(IGB.rx.bal, ring as u32);
    w(IGB.rx.len, 8 * 16);
    w(IGB.rx.srrctl, 0x0200_0001);
    w(IGB.rx.tail, 5);
    let mut t = start(&io, &IGB, &whole(), PAGE);
    // Stopped, it writes nothing: its buffers are not the device's.
    let first = report(&mut t, &io);
    assert!((40..45).all(|p| !first.contains(&p)), "{first:?}");
    // Started by the driver's resume (no trapped write), they are: what the
    // head passed is marked.
    io.0.borrow_mut()
        .regs
        .set(IGB.rxq(IGB.rx.dctl, 1), DCTL_ENABLE);
    io.0.borrow_mut().regs.set(IGB.rxq(IGB.rx.head, 1), 2);
    let second = report(&mut t, &io);
    assert!(second.contains(&40) && second.contains(&41) && !second.contains(&42));
    assert_eq!(t.taint(), None);
}
