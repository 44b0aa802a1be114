// SPDX-License-Identifier: GPL-2.0

//! Device DMA dirty logging (`VFIO_DEVICE_FEATURE_DMA_LOGGING_*`): the
//! uAPI's contract, the reports of an RX stream used as a VMM's pre-copy
//! uses them (sound: no page missed; precise: reported pages did change),
//! through both IOMMU backends, and a hostile guest's RX tail and
//! descriptors.

use std::collections::BTreeSet;
use std::io;
use std::time::Duration;

use ivf_common::regs;
use ivf_guest::pf::PfPort;
use ivf_guest::{rx_buf_off, Guest, IOVA_BASE, MEM_PAGES, MEM_SIZE, PAGE_SIZE, RING_SIZE};
use ivf_vfio::sysfs::{self, Bdf, DirtyStats, DirtyTracking};
use ivf_vfio::uapi::mig;
use ivf_vfio::{dirty_iovas, Backend, Device};

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    dirty_log_uapi,
    dirty_log_rx_stream,
    dirty_log_container,
    dirty_log_hwpt,
    dirty_log_hostile_guest,
    dirty_log_hostile_iterative_copy,
];

const MAP: &regs::RegMap = &regs::IGB;
const WAIT: Duration = Duration::from_secs(5);
const PAGE: u64 = PAGE_SIZE as u64;
/// The guest's whole DMA memory as one logging range (IOVA, length).
const GUEST_RANGE: (u64, u64) = (IOVA_BASE, MEM_SIZE as u64);
/// Frames the PF sends before the guest drains them: fewer than the 63
/// posted descriptors, as a full ring drops.
const BATCH: u64 = 50;
/// Frames the device has written but the guest not processed at the stop.
const IN_FLIGHT: u64 = 20;
/// Rounds with fewer packets are left out of the precision figure: the
/// buffers still posted at a report are reported dirty (the device may
/// write them any time) though a short round may not have reached them.
const PRECISION_MIN_PACKETS: u64 = 500;
/// Lowest acceptable precision of such a round.
const MIN_PRECISION: f64 = 0.9;

fn errno_text(errno: i32) -> String {
    io::Error::from_raw_os_error(errno).to_string()
}

/// `r` must have failed with `errno`.
fn expect_errno<T>(r: ivf_vfio::Result<T>, errno: i32, what: &str) -> Outcome {
    match r {
        Ok(_) => Err(format!("{what}: succeeded, expected {}", errno_text(errno))),
        Err(e) if e.errno() == Some(errno) => Ok(()),
        Err(e) => Err(format!("{what}: {e}; expected {}", errno_text(errno))),
    }
}

fn stats(vf: Bdf) -> Result<DirtyStats, String> {
    s(sysfs::dirty_stats(vf))
}

/// Every test here expects the module's default mode on its VF; a kernel
/// without iova_bitmap (CONFIG_IOMMUFD_DRIVER) has no device mode at all.
fn need_device_mode(vf: Bdf) -> Outcome {
    if s(sysfs::dirty_tracking(vf))? == DirtyTracking::None {
        if let Err(e) = sysfs::set_dirty_tracking(vf, DirtyTracking::Device) {
            if e.errno() == Some(libc::EOPNOTSUPP) {
                return crate::ktap::skip(
                    "this kernel cannot report DMA logging (no iova_bitmap: CONFIG_IOMMUFD_DRIVER off), so the driver offers no device dirty tracking",
                );
            }
        }
    }
    ensure_eq!(
        s(sysfs::dirty_tracking(vf))?,
        DirtyTracking::Device,
        "dirty_tracking of {vf} (the module's default)"
    );
    Ok(())
}

/// The guest pages (indices into its DMA memory) a report of the guest's
/// range at `page_size` marks.
fn guest_pages(bitmap: &[u64], page_size: u64) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for iova in dirty_iovas(bitmap, IOVA_BASE, page_size) {
        for k in 0..(page_size / PAGE).max(1) {
            let off = iova - IOVA_BASE + k * PAGE;
            if off < MEM_SIZE as u64 {
                out.insert((off / PAGE) as usize);
            }
        }
    }
    out
}

fn report_guest(dev: &Device, page_size: u64) -> Result<BTreeSet<usize>, String> {
    let bitmap = s(dev.log_report(GUEST_RANGE.0, GUEST_RANGE.1, page_size))?;
    Ok(guest_pages(&bitmap, page_size))
}

/// The page of the RX buffer of descriptor `desc`.
fn rx_buf_page(desc: u32) -> usize {
    rx_buf_off(desc) / PAGE_SIZE
}

fn page(mem: &[u8], p: usize) -> &[u8] {
    &mem[p * PAGE_SIZE..(p + 1) * PAGE_SIZE]
}

fn differing_pages(a: &[u8], b: &[u8]) -> Vec<usize> {
    (0..MEM_PAGES)
        .filter(|p| page(a, *p) != page(b, *p))
        .collect()
}

/// The PF sends `n` frames from the guest's next sequence number, in
/// batches; the guest must receive each once, in order, intact. Returns
/// the descriptors they arrived in.
pub(crate) fn stream(pf: &PfPort, g: &mut Guest<'_>, n: u64) -> Result<Vec<u32>, String> {
    let mac = g.mac();
    let mut seq = g.state().rx_seq;
    let end = seq + n;
    let mut descs = Vec::new();
    while seq < end {
        let batch = seq..(seq + BATCH).min(end);
        for q in batch.clone() {
            pf.send(mac, q)?;
        }
        let want = (batch.end - batch.start) as usize;
        let got = g.receive(want, WAIT);
        ensure_eq!(got.len(), want, "frames received of {batch:?}");
        for (r, q) in got.iter().zip(batch.clone()) {
            ensure!(
                r.intact && r.seq == q,
                "frame {} in descriptor {} is corrupt or out of order (expected {q})",
                r.seq,
                r.desc
            );
        }
        descs.extend(got.iter().map(|r| r.desc));
        seq = batch.end;
    }
    Ok(descs)
}

fn dirty_log_uapi() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    need_device_mode(vf)?;
    let pf = PfPort::open()?;
    {
        let dev = s(Device::open_default(vf))?;
        uapi_calls(vf, &dev, &pf)?;
        // The mode is fixed while a VFIO user has the device open.
        expect_errno(
            sysfs::set_dirty_tracking(vf, DirtyTracking::None),
            libc::EBUSY,
            "dirty_tracking -> none while the device is open",
        )?;
        ensure_eq!(
            s(sysfs::dirty_tracking(vf))?,
            DirtyTracking::Device,
            "mode after the refused change"
        );
    }
    ensure!(
        sysfs::write_dirty_tracking(vf, "bogus").is_err(),
        "dirty_tracking accepted 'bogus'"
    );
    let none = none_mode(vf, &pf);
    let back = s(sysfs::set_dirty_tracking(vf, DirtyTracking::Device));
    none?;
    back?;
    need_device_mode(vf)?;
    // Back in mode device: the RX tail page is trapped again.
    let dev = s(Device::open_default(vf))?;
    let bar = s(dev.map_bar(0))?;
    ensure!(
        !bar.is_mapped(MAP.rx.tail as usize),
        "RX tail page mapped after returning to mode device"
    );
    ensure!(s(dev.log_probe())?, "probe after returning to mode device");
    Ok(())
}

/// The uAPI calls on an open device in mode device.
fn uapi_calls(vf: Bdf, dev: &Device, pf: &PfPort) -> Outcome {
    ensure!(
        s(dev.log_probe())?,
        "probe: DMA logging not offered in mode device"
    );
    // BAR0 has two holes, the mailbox page and the RX tail page; the pages
    // between and after them are mapped.
    let bar = s(dev.map_bar(0))?;
    for (off, mapped) in [
        (MAP.mbx_ctrl, false),
        (MAP.eitr, true),
        (MAP.rx.tail, false),
        (MAP.rx.bal, false),
        (MAP.tx.tail, true),
    ] {
        ensure_eq!(
            bar.is_mapped(off as usize),
            mapped,
            "BAR0 offset {off:#x} mapped in mode device"
        );
    }
    drop(bar);
    let mut g = s(Guest::start(dev, None))?;
    let ps = s(dev.log_start(&[GUEST_RANGE], PAGE))?;
    ensure!(
        ps >= PAGE && ps.is_power_of_two(),
        "page size {ps:#x} chosen for {PAGE:#x}"
    );
    ensure!(
        stats(vf)?.logging,
        "dirty_stats says logging 0 while logging"
    );
    expect_errno(
        dev.log_start(&[GUEST_RANGE], PAGE),
        libc::EBUSY,
        "second DMA_LOGGING_START",
    )?;
    s(dev.log_report(GUEST_RANGE.0, GUEST_RANGE.1, ps))?;
    s(dev.log_stop())?;
    ensure!(!stats(vf)?.logging, "dirty_stats says logging 1 after stop");
    expect_errno(
        dev.log_report(GUEST_RANGE.0, GUEST_RANGE.1, ps),
        libc::EINVAL,
        "report after stop",
    )?;
    s(dev.log_start(&[GUEST_RANGE], PAGE)).map_err(|e| format!("restart: {e}"))?;
    s(dev.log_stop())?;
    s(dev.log_stop()).map_err(|e| format!("stop when not logging: {e}"))?;

    // Refused requests start nothing.
    let ranges_257: Vec<(u64, u64)> = (0..257).map(|i| (IOVA_BASE + 2 * i * PAGE, PAGE)).collect();
    let refused: [Refused; 5] = [
        ("no range", &[], PAGE, libc::EINVAL),
        (
            "unaligned IOVA",
            &[(IOVA_BASE + 0x800, PAGE)],
            PAGE,
            libc::EINVAL,
        ),
        (
            "unaligned length",
            &[(IOVA_BASE, PAGE + 0x800)],
            PAGE,
            libc::EINVAL,
        ),
        (
            "overlapping ranges",
            &[(IOVA_BASE, 2 * PAGE), (IOVA_BASE + PAGE, 2 * PAGE)],
            PAGE,
            libc::EINVAL,
        ),
        ("257 ranges", &ranges_257, PAGE, libc::E2BIG),
    ];
    for (what, ranges, page_size, errno) in refused {
        expect_errno(dev.log_start(ranges, page_size), errno, what)?;
        ensure!(
            !stats(vf)?.logging,
            "logging after a refused start ({what})"
        );
    }

    // A page size that is no power of two is a hint the driver may refuse
    // or round up (the uAPI lets it choose), never take as is.
    let odd = match dev.log_start(&[GUEST_RANGE], 3000) {
        Err(e) if e.errno() == Some(libc::EINVAL) => "refused (EINVAL)".to_string(),
        Err(e) => {
            return Err(format!(
                "page size 3000: {e}; expected EINVAL or a rounded size"
            ))
        }
        Ok(ps) => {
            s(dev.log_stop())?;
            ensure!(
                ps >= PAGE && ps.is_power_of_two(),
                "page size {ps:#x} chosen for 3000"
            );
            format!("rounded to {ps}")
        }
    };

    // Three ranges covering the guest's memory, one far from it, in no
    // particular order: each report shows only what the device wrote.
    let far = (0x40_0000_0000u64, 16 * PAGE);
    let r1 = (IOVA_BASE, 4 * PAGE);
    let r2 = (IOVA_BASE + 4 * PAGE, 16 * PAGE);
    let r3 = (IOVA_BASE + 20 * PAGE, MEM_SIZE as u64 - 20 * PAGE);
    let ps = s(dev.log_start(&[far, r3, r1, r2], PAGE))?;
    let descs = stream(pf, &mut g, 40)?;
    let mut seen = BTreeSet::new();
    for r in [r1, r2, r3] {
        let bitmap = s(dev.log_report(r.0, r.1, ps))?;
        for iova in dirty_iovas(&bitmap, r.0, ps) {
            ensure!(
                iova >= r.0 && iova < r.0 + r.1,
                "report of {r:x?} marks {iova:#x}"
            );
            seen.insert(((iova - IOVA_BASE) / PAGE) as usize);
        }
    }
    let far_bits = s(dev.log_report(far.0, far.1, ps))?;
    ensure!(
        far_bits.iter().all(|w| *w == 0),
        "the far range, which nothing maps, is reported dirty: {far_bits:x?}"
    );
    // The TX ring is reported too: the device writes descriptors back there
    // whenever the guest sends, which the driver cannot see coming.
    let ring_page = ivf_guest::RX_RING_OFF / PAGE_SIZE;
    let tx_ring_page = ivf_guest::TX_RING_OFF / PAGE_SIZE;
    let bufs = rx_buf_page(0)..=rx_buf_page(RING_SIZE - 1);
    for p in &seen {
        ensure!(
            *p == ring_page || *p == tx_ring_page || bufs.contains(p),
            "page {p} reported, the device writes only the RX ring (page {ring_page}), the TX ring (page {tx_ring_page}) and RX buffers (pages {bufs:?})"
        );
    }
    for d in &descs {
        ensure!(
            seen.contains(&rx_buf_page(*d)),
            "the buffer page of descriptor {d}, which received a frame, is not reported"
        );
    }
    ensure!(
        seen.contains(&ring_page),
        "the RX ring page, written back, is not reported"
    );
    s(dev.log_stop())?;

    // A larger page size is accepted; the driver may choose a larger one.
    let ps = s(dev.log_start(&[GUEST_RANGE], 8192))?;
    ensure!(
        ps >= 8192 && ps.is_power_of_two(),
        "page size {ps:#x} chosen for 0x2000"
    );
    let descs = stream(pf, &mut g, 10)?;
    let pages = report_guest(dev, ps)?;
    for d in &descs {
        ensure!(
            pages.contains(&rx_buf_page(*d)),
            "page size {ps}: the buffer of descriptor {d} is not reported"
        );
    }
    s(dev.log_stop())?;

    // A write from the mapped page 1 spilling onto the trapped RX page
    // could move a tail unseen: the session reports everything from then on.
    s(dev.log_start(&[GUEST_RANGE], PAGE))?;
    let before = stats(vf)?;
    s(dev.write_region(0, 0x1ffc, &[0u8; 8]))?;
    let after = stats(vf)?;
    let all = report_guest(dev, PAGE)?;
    s(dev.log_stop())?;
    ensure!(
        after.taints == before.taints + 1 && all.len() == MEM_PAGES,
        "a write across pages 1 and 2: taints {} -> {}, {} of {MEM_PAGES} pages reported",
        before.taints,
        after.taints,
        all.len()
    );
    println!(
        "# dirty_log_uapi: page size 8192 asked, {ps} chosen; page size 3000 {odd}; {} pages of 40 received frames reported over 3 ranges",
        seen.len()
    );
    Ok(())
}

/// Mode "none": nothing trapped for logging, and no logging features.
/// Leaves the mode as it is (the caller restores it).
fn none_mode(vf: Bdf, pf: &PfPort) -> Outcome {
    s(sysfs::set_dirty_tracking(vf, DirtyTracking::None))?;
    ensure_eq!(
        s(sysfs::dirty_tracking(vf))?,
        DirtyTracking::None,
        "mode after setting none"
    );
    let dev = s(Device::open_default(vf))?;
    ensure!(!s(dev.log_probe())?, "probe offers logging in mode none");
    expect_errno(
        dev.log_start(&[GUEST_RANGE], PAGE),
        libc::ENOTTY,
        "start in mode none",
    )?;
    expect_errno(
        dev.log_report(GUEST_RANGE.0, GUEST_RANGE.1, PAGE),
        libc::ENOTTY,
        "report in mode none",
    )?;
    expect_errno(dev.log_stop(), libc::ENOTTY, "stop in mode none")?;
    let mut g = s(Guest::start(&dev, None))?;
    ensure!(
        g.bar().is_mapped(MAP.rx.tail as usize),
        "RX tail page trapped in mode none"
    );
    ensure!(
        !g.bar().is_mapped(MAP.mbx_ctrl as usize),
        "mailbox page mapped in mode none"
    );
    // The data path works with the tail mapped.
    stream(pf, &mut g, RING_SIZE as u64 + 10)?;
    Ok(())
}

/// A start request the kernel must refuse: what, ranges, page size, errno.
type Refused<'a> = (&'a str, &'a [(u64, u64)], u64, i32);

/// One report of a VMM's pre-copy: what it showed and how good it was.
struct Round {
    /// Frames received since the previous report.
    packets: u64,
    /// Pages the device reported.
    reported: usize,
    /// Reported pages whose bytes had changed since the last copy.
    changed: usize,
    /// Pages the guest's CPU wrote.
    cpu: usize,
    /// Pages that differ after copying both (the device being idle).
    misses: Vec<usize>,
}

impl Round {
    fn precision(&self) -> f64 {
        if self.reported == 0 {
            0.0
        } else {
            self.changed as f64 / self.reported as f64
        }
    }
}

/// A report, and the copy of the reported and CPU-dirty pages into the
/// shadow, as a VMM copies RAM to the destination. Call with the device
/// idle (every frame sent received, or stopped): the shadow must then
/// equal the memory.
fn sync_round(
    dev: &Device,
    g: &mut Guest<'_>,
    shadow: &mut [u8],
    page_size: u64,
    packets: u64,
) -> Result<Round, String> {
    let reported = report_guest(dev, page_size)?;
    let changed = reported
        .iter()
        .filter(|p| page(g.memory(), **p) != page(shadow, **p))
        .count();
    let cpu = g.take_cpu_dirty();
    let mem = g.memory();
    for p in reported.iter().copied().chain(cpu.iter().copied()) {
        let r = p * PAGE_SIZE..(p + 1) * PAGE_SIZE;
        shadow[r.clone()].copy_from_slice(&mem[r]);
    }
    Ok(Round {
        packets,
        reported: reported.len(),
        changed,
        cpu: cpu.len(),
        misses: differing_pages(shadow, mem),
    })
}

/// The RX stream under DMA logging, as QEMU's pre-copy: log, copy all,
/// then rounds of traffic, report, copy; stop; last report and copy; the
/// copy must equal the memory. Returns the rounds (the last after STOP).
fn logged_stream(
    vf: Bdf,
    dev: &Device,
    pf: &PfPort,
    batched: bool,
    packets: u64,
    per_round: u64,
) -> Result<Vec<Round>, String> {
    let mut g = s(Guest::start(dev, None))?;
    g.set_rx_batched(batched);
    let ps = s(dev.log_start(&[GUEST_RANGE], PAGE))?;
    // After the start: the counters may restart with logging.
    let before = stats(vf)?;
    // Everything so far is in the first copy.
    let mut shadow = g.memory().to_vec();
    g.take_cpu_dirty();
    let mut rounds = Vec::new();
    let mut since = 0;
    let mut done = 0;
    while done < packets {
        let n = per_round.min(packets - done);
        stream(pf, &mut g, n)?;
        done += n;
        since += n;
        if since >= per_round {
            rounds.push(sync_round(dev, &mut g, &mut shadow, ps, since)?);
            since = 0;
        }
    }
    let during = stats(vf)?;
    ensure!(during.logging, "dirty_stats says logging 0 while logging");
    // Frames the device writes before the stop that the guest has not
    // seen: no RDT write posted their buffers since the last report, yet
    // the last report must hold them.
    let head = g.bar().read32(MAP.rx.head as usize);
    let next = g.state().rx_seq;
    for q in next..next + IN_FLIGHT {
        pf.send(g.mac(), q)?;
    }
    let want = (head + IN_FLIGHT as u32) % RING_SIZE;
    let t = std::time::Instant::now();
    while g.bar().read32(MAP.rx.head as usize) != want {
        ensure!(
            t.elapsed() < WAIT,
            "RDH {} after {IN_FLIGHT} frames from RDH {head}, expected {want}",
            g.bar().read32(MAP.rx.head as usize)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    s(dev.set_mig_state(mig::STOP))?;
    rounds.push(sync_round(dev, &mut g, &mut shadow, ps, since + IN_FLIGHT)?);
    let after = stats(vf)?;
    ensure!(
        after.traps > before.traps,
        "dirty_stats: traps {} -> {} over {packets} frames",
        before.traps,
        after.traps
    );
    ensure!(
        after.max_descriptors_per_trap < u64::from(RING_SIZE),
        "dirty_stats: max_descriptors_per_trap {} for a ring of {RING_SIZE}",
        after.max_descriptors_per_trap
    );
    let d = after.since(&before);
    println!(
        "# dirty_stats over the stream: traps {} descriptors {} max_descriptors_per_trap {} trap_ns {} reports {} taints {}",
        d.traps, d.descriptors, d.max_descriptors_per_trap, d.trap_ns, d.reports, d.taints
    );
    s(dev.set_mig_state(mig::RUNNING))?;
    s(dev.log_stop())?;
    // The guest takes the frames that were in flight.
    let got = g.receive(IN_FLIGHT as usize, WAIT);
    ensure_eq!(
        got.iter().map(|r| (r.seq, r.intact)).collect::<Vec<_>>(),
        (next..next + IN_FLIGHT)
            .map(|q| (q, true))
            .collect::<Vec<_>>(),
        "frames in flight at the stop, received after it"
    );
    let st = g.state();
    ensure_eq!(
        (st.rx_count, st.rx_bad),
        (packets + IN_FLIGHT, 0),
        "guest counters (received, bad)"
    );
    Ok(rounds)
}

/// Runs [`logged_stream`] on VF0 opened with `backend`, judges and prints
/// the rounds, and leaves the VF running, not logging.
fn rx_stream(name: &str, backend: Backend, batched: bool, packets: u64, per_round: u64) -> Outcome {
    if !backend.available() {
        return crate::ktap::skip(format!("this kernel has no {backend:?} backend"));
    }
    let vf = host::need_vfs(1)?[0];
    need_device_mode(vf)?;
    let pf = PfPort::open()?;
    let dev = s(Device::open(vf, backend))?;
    let result = logged_stream(vf, &dev, &pf, batched, packets, per_round);
    if result.is_err() {
        // Whatever state the failure left: not logging, running.
        let _ = dev.log_stop();
        if dev.mig_state().ok() != Some(mig::RUNNING) {
            let _ = dev.reset();
        }
    }
    let rounds = result?;
    let judged: Vec<&Round> = rounds
        .iter()
        .filter(|r| r.packets >= PRECISION_MIN_PACKETS)
        .collect();
    let precisions: Vec<f64> = judged.iter().map(|r| r.precision()).collect();
    let min = precisions.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = precisions.iter().sum::<f64>() / precisions.len().max(1) as f64;
    let last = rounds.last().expect("the round after STOP");
    let reported: usize = rounds.iter().map(|r| r.reported).sum();
    let cpu: usize = rounds.iter().map(|r| r.cpu).sum();
    println!(
        "# {name}: {packets} frames + {IN_FLIGHT} unprocessed at the stop ({}), {} rounds ({} of >= {PRECISION_MIN_PACKETS} frames), {:?} backend",
        if batched { "one RDT write per poll" } else { "one RDT write per descriptor" },
        rounds.len(),
        judged.len(),
        backend
    );
    println!(
        "# {name}: precision min {min:.3} mean {mean:.3}; per round {}",
        rounds
            .iter()
            .map(|r| format!("{}/{}", r.changed, r.reported))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "# {name}: {reported} pages reported, {cpu} CPU-dirty pages, after STOP {} reported ({} changed), misses {}",
        last.reported,
        last.changed,
        last.misses.len()
    );
    for (i, r) in rounds.iter().enumerate() {
        ensure!(
            r.misses.is_empty(),
            "round {i} of {}: pages {:?} differ from the copy after the report: the device wrote them unreported",
            rounds.len(),
            r.misses
        );
    }
    ensure!(
        !judged.is_empty(),
        "no round of >= {PRECISION_MIN_PACKETS} frames"
    );
    ensure!(
        min.total_cmp(&MIN_PRECISION).is_ge(),
        "precision {min:.3} < {MIN_PRECISION} in a round of >= {PRECISION_MIN_PACKETS} frames"
    );
    Ok(())
}

fn dirty_log_rx_stream() -> Outcome {
    // 10 rounds of 1000 frames (about 16 ring wraps each), then 250 more
    // before STOP: the last report has work to do.
    rx_stream("dirty_log_rx_stream", Backend::Cdev, false, 10_250, 1000)
}

fn dirty_log_container() -> Outcome {
    // The legacy type1 container, and many descriptors per RDT write.
    rx_stream("dirty_log_container", Backend::Group, true, 2050, 1000)
}

fn dirty_log_hwpt() -> Outcome {
    // QEMU's iommufd way: the device attached to an HWPT of the IOAS. The
    // driver must find that IOAS to read descriptors (else every page is
    // reported and the precision check fails).
    rx_stream("dirty_log_hwpt", Backend::Hwpt, true, 2050, 1000)
}

/// Descriptor addresses no honest driver posts: unmapped, outside any
/// logged range, wrapping, and straddling the ends of the guest's range.
fn hostile_addrs(unlogged_but_mapped_nowhere: u64) -> [u64; 7] {
    [
        0,
        0x0dea_dbee_f000,
        !0x7ff,
        IOVA_BASE - 1024,
        IOVA_BASE + MEM_SIZE as u64 - 1024,
        unlogged_but_mapped_nowhere,
        0x40_0000_0000,
    ]
}

fn dirty_log_hostile_guest() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    need_device_mode(vf)?;
    let pf = PfPort::open()?;
    let dev = s(Device::open_default(vf))?;
    let result = hostile(vf, &dev);
    let _ = dev.log_stop();
    result?;
    // A reset and a fresh guest: the VF receives again.
    s(dev.reset())?;
    ensure_eq!(s(dev.mig_state())?, mig::RUNNING, "state after reset");
    let mut g = s(Guest::start(&dev, None))?;
    stream(&pf, &mut g, 2 * RING_SIZE as u64 + 10)?;
    Ok(())
}

fn hostile(vf: Bdf, dev: &Device) -> Outcome {
    let mut g = s(Guest::start(dev, None))?;
    let bar = s(dev.map_bar(0))?;
    let tail = MAP.rx.tail as usize;
    ensure!(
        !bar.is_mapped(tail),
        "RX tail page mapped in mode device: the driver must trap it"
    );
    // The guest's memory and a logged range nothing maps.
    let nowhere = (IOVA_BASE + 0x100_0000, 16 * PAGE);
    let ranges = [GUEST_RANGE, nowhere];
    let ps = s(dev.log_start(&ranges, PAGE))?;
    let before = stats(vf)?;

    // Hostile descriptors, posted one RDT write each (the tail starts at
    // RING_SIZE - 1 after start).
    let addrs = hostile_addrs(nowhere.0 + 3 * PAGE);
    for i in 0..RING_SIZE {
        g.set_rx_desc(i, addrs[i as usize % addrs.len()]);
    }
    for k in 0..RING_SIZE {
        bar.write32(tail, k);
    }
    let pages = report_guest(dev, ps)?;
    let nowhere_bits = s(dev.log_report(nowhere.0, nowhere.1, ps))?;
    // The logged parts of buffers straddling a range's end must be marked.
    for (p, what) in [(0, "below the range"), (MEM_PAGES - 1, "past the range")] {
        ensure!(
            pages.contains(&p),
            "page {p}: a posted buffer straddles it from {what}, not reported"
        );
    }
    // The device cannot write there (unmapped): marking it is allowed, not
    // required.
    let nowhere_marked =
        dirty_iovas(&nowhere_bits, nowhere.0, ps).contains(&(nowhere.0 + 3 * PAGE));

    // Rapid tail writes that wrap the ring, posting 1 to 63 descriptors
    // each, over the guest's own buffers again.
    g.rearm_rx_ring();
    let mut t = 0u32;
    for k in 0..10_000u32 {
        t = match k % 4 {
            0 => (t + 1) % RING_SIZE,
            1 => (t + RING_SIZE - 1) % RING_SIZE,
            2 => (t + RING_SIZE / 2) % RING_SIZE,
            _ => k.wrapping_mul(37) % RING_SIZE,
        };
        bar.write32(tail, t);
    }
    report_guest(dev, ps).map_err(|e| format!("report after 10000 tail writes: {e}"))?;
    let mid = stats(vf)?.since(&before);
    ensure!(
        mid.traps >= 10_000,
        "dirty_stats: {} traps for 10064 RX tail writes",
        mid.traps
    );
    ensure!(
        mid.max_descriptors_per_trap < u64::from(RING_SIZE),
        "dirty_stats: max_descriptors_per_trap {} for a ring of {RING_SIZE}",
        mid.max_descriptors_per_trap
    );

    // A tail past the ring: the tracker cannot tell what is posted, so
    // every logged page is dirty from then on (sound, not precise).
    report_guest(dev, ps)?;
    s(dev.log_report(nowhere.0, nowhere.1, ps))?;
    bar.write32(tail, 5000);
    let pages = report_guest(dev, ps)?;
    ensure_eq!(
        pages.len(),
        MEM_PAGES,
        "guest pages reported after RDT = 5000"
    );
    let bits = s(dev.log_report(nowhere.0, nowhere.1, ps))?;
    let n = dirty_iovas(&bits, nowhere.0, ps).len() as u64;
    ensure_eq!(
        n,
        nowhere.1 / ps,
        "pages of the unmapped logged range reported after RDT = 5000"
    );
    let after = stats(vf)?;
    ensure!(
        after.logging && after.taints >= 1,
        "dirty_stats of the session after RDT = 5000: logging {}, taints {} (want true, >= 1)",
        after.logging,
        after.taints
    );
    ensure!(
        after.max_descriptors_per_trap < u64::from(RING_SIZE),
        "dirty_stats: max_descriptors_per_trap {} after RDT = 5000",
        after.max_descriptors_per_trap
    );
    s(dev.log_stop())?;
    // Tail writes with logging off are trapped too, and cost nothing more.
    for k in 0..1000u32 {
        bar.write32(tail, k.wrapping_mul(29) % RING_SIZE);
    }
    bar.write32(tail, 70_000);
    let end = stats(vf)?.since(&before);
    println!(
        "# dirty_log_hostile_guest: {} traps, {} descriptors, max {} per trap, {} taints, {} us in traps; a buffer in the logged unmapped range {}",
        end.traps,
        end.descriptors,
        end.max_descriptors_per_trap,
        end.taints,
        end.trap_ns / 1000,
        if nowhere_marked { "was marked" } else { "was not marked" }
    );
    Ok(())
}

/// Frames per round of [`hostile_copy`]: a descriptor or a whole ring's
/// worth, wrapping the ring several times.
const HOSTILE_ROUNDS: [u32; 10] = [40, 63, 1, 17, 62, 5, 33, 63, 2, 50];

fn dirty_log_hostile_iterative_copy() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    need_device_mode(vf)?;
    let pf = PfPort::open()?;
    let dev = s(Device::open_default(vf))?;
    let result = hostile_copies(&dev, &pf);
    let _ = dev.log_stop();
    result?;
    // A reset and a fresh guest: the VF receives again.
    s(dev.reset())?;
    let mut g = s(Guest::start(&dev, None))?;
    stream(&pf, &mut g, 2 * RING_SIZE as u64 + 10)?;
    Ok(())
}

/// Two logging sessions of [`hostile_copy`]: one that starts with
/// DD-looking descriptors outstanding, one that starts clean. The tracker
/// must follow the forged descriptors in both (the copies stay equal to
/// memory) and stay precise (not the all-dirty fallback).
fn hostile_copies(dev: &Device, pf: &PfPort) -> Outcome {
    let mut g = s(Guest::start(dev, None))?;
    let forged_at_start = hostile_copy(dev, pf, &mut g, 1)?;
    ensure!(
        forged_at_start.iter().all(|&r| r < MEM_PAGES),
        "pages reported per round {forged_at_start:?} after a start with DD-looking descriptors outstanding: the tracker did not follow them (all {MEM_PAGES} is the fallback)"
    );
    s(dev.log_stop())?;
    let clean_at_start = hostile_copy(dev, pf, &mut g, 0)?;
    ensure!(
        clean_at_start.iter().all(|&r| r < MEM_PAGES),
        "pages reported per round {clean_at_start:?}: the tracker did not follow the forged posts (all {MEM_PAGES} is the fallback)"
    );
    println!(
        "# dirty_log_hostile_iterative_copy: {} rounds of {HOSTILE_ROUNDS:?} frames, each session; pages reported per round: {forged_at_start:?} (forged at the start), {clean_at_start:?} (forged later); both followed; every copy, the final after STOP, equals guest memory",
        HOSTILE_ROUNDS.len()
    );
    Ok(())
}

/// A VMM's iterative copy while the guest posts descriptors that look
/// written back: the header word of one-buffer descriptors (unused) with
/// bit 0 set, DD in the advanced write-back format. Every descriptor is
/// posted before logging starts with header word `start_hdr`; between
/// reports the filled ones are posted again, forged or clean in turn,
/// one RDT write each or at once. Each round the device fills some; the
/// report and the CPU-dirty pages are copied; the copy must equal the
/// memory, to the last copy after STOP. Returns the pages reported per
/// round.
fn hostile_copy(
    dev: &Device,
    pf: &PfPort,
    g: &mut Guest<'_>,
    start_hdr: u64,
) -> Result<Vec<usize>, String> {
    let (head, tail) = (MAP.rx.head as usize, MAP.rx.tail as usize);
    let buf = |i: u32| IOVA_BASE + rx_buf_off(i % RING_SIZE) as u64;
    let mut rdh = g.bar().read32(head);
    for i in 0..RING_SIZE {
        g.set_rx_desc_hdr(i, buf(i), start_hdr);
    }
    // Every descriptor but one posted, before the start.
    g.bar().write32(tail, (rdh + RING_SIZE - 1) % RING_SIZE);
    let ps = s(dev.log_start(&[GUEST_RANGE], PAGE))?;
    let mut shadow = g.memory().to_vec();
    g.take_cpu_dirty();
    let mac = g.mac();
    let mut seq = 1u64 << 40;
    let mut reported = Vec::new();
    let rounds = HOSTILE_ROUNDS.iter().copied().chain([IN_FLIGHT as u32]);
    for (round, n) in rounds.enumerate() {
        let last = round == HOSTILE_ROUNDS.len();
        for _ in 0..n {
            pf.send(mac, seq)?;
            seq += 1;
        }
        let want = (rdh + n) % RING_SIZE;
        let t = std::time::Instant::now();
        while g.bar().read32(head) != want {
            ensure!(
                t.elapsed() < WAIT,
                "round {round}: RDH {} after {n} frames from RDH {rdh}, expected {want}",
                g.bar().read32(head)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // The last frames are in flight at the stop: STOP, then the last
        // report and copy.
        if last {
            s(dev.set_mig_state(mig::STOP))?;
        }
        let r = sync_round(dev, g, &mut shadow, ps, u64::from(n))?;
        ensure!(
            r.misses.is_empty(),
            "round {round}: pages {:?} differ from the copy after the report: the device wrote them unreported",
            r.misses
        );
        ensure!(
            r.changed > 0,
            "round {round}: {n} frames received, yet no reported page changed"
        );
        if last {
            ensure!(
                shadow == g.memory(),
                "the final copy differs from guest memory"
            );
            s(dev.set_mig_state(mig::RUNNING))?;
            break;
        }
        reported.push(r.reported);
        // The filled descriptors again, forged or clean in turn, posted
        // one RDT write each on even rounds.
        for i in rdh..rdh + n {
            g.set_rx_desc_hdr(i, buf(i), u64::from(i % 2 == 0 || round % 3 == 0));
            if round % 2 == 0 {
                g.bar().write32(tail, i % RING_SIZE);
            }
        }
        rdh = want;
        g.bar().write32(tail, (rdh + RING_SIZE - 1) % RING_SIZE);
    }
    Ok(reported)
}
