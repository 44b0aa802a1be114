// SPDX-License-Identifier: GPL-2.0

//! The dirty tracker against descriptors a hostile (or merely unusual)
//! guest posts: bits that look like a write-back in the legacy format,
//! write-back-looking descriptors the device owns when logging starts, and
//! buffers and head write-back at IOVA 0. Each case: the page the device
//! writes must be in the report.

use std::collections::BTreeSet;

use ivf_common::dirty::{self, LoggedRange, Range};
use ivf_common::regs::{DCTL_ENABLE, IGB};
use ivf_common::tracker::{Slot, Tracker};

mod support;
use support::io::{Mem, Regs};

const PAGE: u64 = 4096;
const PAGES: u64 = 32;
const RING: u64 = 0x1000;
const RING_LEN: u32 = 8;
/// SRRCTL: 2 KiB packet buffers, legacy descriptors (type 0).
const SRRCTL_LEGACY: u32 = 2;
/// SRRCTL: 2 KiB packet buffers, advanced one-buffer descriptors (type 1).
const SRRCTL_ADV: u32 = 2 | 1 << 25;

type T = Tracker<Vec<LoggedRange>, Vec<u64>, Vec<Slot>>;

/// Registers and guest memory from IOVA 0: the tracker reads the
/// registers through `regs` and the descriptors through a copy of `mem`.
struct Vf {
    regs: Regs,
    mem: Mem,
}

impl Vf {
    fn new() -> Vf {
        Vf {
            regs: Regs::default(),
            mem: Mem::new(0, (PAGES * PAGE) as usize),
        }
    }

    fn post(&mut self, i: u32, lo: u64, hi: u64) {
        let at = (RING + u64::from(i) * 16) as usize;
        self.mem.bytes[at..at + 8].copy_from_slice(&lo.to_le_bytes());
        self.mem.bytes[at + 8..at + 16].copy_from_slice(&hi.to_le_bytes());
    }

    /// An enabled RX queue 0 on the ring, head 0, tail `tail`.
    fn rx_queue(&mut self, srrctl: u32, tail: u32) {
        let r = &IGB.rx;
        for (off, v) in [
            (r.bal, RING as u32),
            (r.bah, 0),
            (r.len, RING_LEN * 16),
            (r.srrctl, srrctl),
            (r.head, 0),
            (r.tail, tail),
            (r.dctl, DCTL_ENABLE),
        ] {
            self.regs.set(off, v);
        }
    }

    /// The device takes `n` descriptors (their buffers are written).
    fn consume(&mut self, n: u32) {
        let head = self.regs.get(IGB.rx.head);
        self.regs.set(IGB.rx.head, (head + n) % RING_LEN);
    }
}

fn start(vf: &mut Vf) -> T {
    start_paged(vf, PAGE).0
}

/// A tracker over the whole memory whose bitmap pages are `bitmap_page`
/// bytes, and the page size `dirty::check` settled on.
fn start_paged(vf: &mut Vf, bitmap_page: u64) -> (T, u64) {
    let mut ranges = vec![LoggedRange {
        range: Range {
            iova: 0,
            len: PAGES * PAGE,
        },
        first_bit: 0,
    }];
    let (page, words) = dirty::check(&mut ranges, bitmap_page).unwrap();
    let slots = vec![Slot::default(); T::slots_needed(&IGB)];
    let mut dma = vf.mem.clone();
    let regs = &mut vf.regs;
    let t = T::start(&IGB, ranges, page, vec![0; words], slots, regs, &mut dma).unwrap();
    (t, page)
}

fn report(t: &mut T, vf: &mut Vf) -> BTreeSet<u64> {
    let mut pages = BTreeSet::new();
    let mut dma = vf.mem.clone();
    t.report(&mut vf.regs, &mut dma, 0, PAGES * PAGE, |iova, len| {
        for p in iova / PAGE..=(iova + len - 1) / PAGE {
            pages.insert(p);
        }
    });
    pages
}

#[test]
fn legacy_descriptor_with_its_low_length_bit_set_is_a_buffer() {
    // Legacy format: bit 0 of the upper word is a length bit, not DD.
    let mut vf = Vf::new();
    vf.post(0, 8 * PAGE, 1);
    vf.rx_queue(SRRCTL_LEGACY, 1);
    let mut t = start(&mut vf);
    vf.consume(1);
    let pages = report(&mut t, &mut vf);
    assert!(pages.contains(&8), "buffer page 8 not reported: {pages:?}");
}

#[test]
fn write_back_looking_descriptor_the_device_owns_at_start_is_followed() {
    // Forged DD on a posted buffer: its address is followed (a real write
    // back at the start landed before the VMM's first copy: no mark needed).
    // No taint: one frame arriving during the start must not make the whole
    // session report every page.
    for (srrctl, hi) in [(SRRCTL_ADV, 1u64), (SRRCTL_LEGACY, 1 << 32)] {
        let mut vf = Vf::new();
        vf.post(0, 9 * PAGE, hi);
        vf.rx_queue(srrctl, 1);
        let mut t = start(&mut vf);
        assert_eq!(t.taint(), None, "SRRCTL {srrctl:#x}");
        vf.consume(1);
        let pages = report(&mut t, &mut vf);
        assert!(
            pages.contains(&9),
            "SRRCTL {srrctl:#x}: buffer page 9 not reported: {pages:?}"
        );
        assert!(
            (pages.len() as u64) < PAGES,
            "SRRCTL {srrctl:#x}: {pages:?}"
        );
    }
}

#[test]
fn honest_descriptors_at_start_do_not_taint() {
    let mut vf = Vf::new();
    vf.post(0, 9 * PAGE, 0);
    vf.post(1, 10 * PAGE, 0);
    vf.rx_queue(SRRCTL_ADV, 2);
    let mut t = start(&mut vf);
    assert_eq!(t.taint(), None);
    vf.consume(2);
    let pages = report(&mut t, &mut vf);
    assert!(pages.contains(&9) && pages.contains(&10), "{pages:?}");
    assert!(
        !pages.contains(&20),
        "an untouched page reported: {pages:?}"
    );
}

#[test]
fn rx_buffer_at_iova_zero_is_reported() {
    let mut vf = Vf::new();
    vf.rx_queue(SRRCTL_ADV, 0);
    let mut t = start(&mut vf);
    // Posted through the trapped tail: the tracker sees it first.
    vf.post(0, 0, 0);
    let mut dma = vf.mem.clone();
    t.rx_write(&mut vf.regs, &mut dma, IGB.rx.tail, 1);
    vf.consume(1);
    let pages = report(&mut t, &mut vf);
    assert!(
        pages.contains(&0),
        "buffer at IOVA 0 not reported: {pages:?}"
    );
}

#[test]
fn tx_head_write_back_at_iova_zero_is_reported() {
    let mut vf = Vf::new();
    let tx = &IGB.tx;
    vf.regs.set(tx.bal, (RING + PAGE) as u32);
    vf.regs.set(tx.len, RING_LEN * 16);
    vf.regs.set(tx.dctl, DCTL_ENABLE);
    // TDWBAL: enable (bit 0), address 0.
    vf.regs.set(tx.wbal, 1);
    let mut t = start(&mut vf);
    let pages = report(&mut t, &mut vf);
    assert!(
        pages.contains(&0),
        "head write-back at IOVA 0 not reported: {pages:?}"
    );
}

/// A report of `[iova, iova + len)` only.
fn report_window(t: &mut T, vf: &mut Vf, iova: u64, len: u64) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut dma = vf.mem.clone();
    t.report(&mut vf.regs, &mut dma, iova, len, |i, l| spans.push((i, l)));
    spans
}

#[test]
fn an_empty_report_window_clears_nothing() {
    let mut vf = Vf::new();
    let mut t = start(&mut vf);
    t.mark(3 * PAGE + 96, 8);
    assert_eq!(report_window(&mut t, &mut vf, 3 * PAGE + 96, 0), vec![]);
    assert!(report(&mut t, &mut vf).contains(&3), "the page was lost");
}

#[test]
fn a_window_over_part_of_a_bitmap_page_keeps_its_bit() {
    // 8 KiB bitmap pages; the VMM asks with 4 KiB windows.
    let mut vf = Vf::new();
    let (mut t, page) = start_paged(&mut vf, 2 * PAGE);
    assert_eq!(page, 2 * PAGE);
    t.mark(PAGE + 8, 8); // in the second half of bitmap page 0
    assert_eq!(report_window(&mut t, &mut vf, 0, PAGE), vec![(0, PAGE)]);
    assert_eq!(
        report_window(&mut t, &mut vf, PAGE, PAGE),
        vec![(PAGE, PAGE)],
        "the second half was lost with the first window"
    );
    // Kept (a superset, never a miss) until one window covers it whole.
    assert_eq!(
        report_window(&mut t, &mut vf, 0, 2 * PAGE),
        vec![(0, 2 * PAGE)]
    );
    assert_eq!(
        report_window(&mut t, &mut vf, 0, 2 * PAGE),
        vec![],
        "cleared once wholly reported"
    );
}
