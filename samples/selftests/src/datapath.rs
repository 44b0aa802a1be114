// SPDX-License-Identifier: GPL-2.0

//! The data path through a migration: the userspace guest driver receives
//! frames the PF sends and sends frames the PF receives, byte for byte.

use std::time::Duration;

use ivf_common::admin::{AdminConfig, ADMIN_LEN};
use ivf_common::bits::IgbVlvf;
use ivf_common::mbx::msg;
use ivf_common::regs::{self, DCTL_ENABLE};
use ivf_common::stream::SECTION_HEADER_LEN;
use ivf_guest::{Guest, RING_SIZE};
use ivf_vfio::uapi::mig;
use ivf_vfio::{read_data, sysfs, write_data, Device};

use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::pf::PfPort;
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    guest_receives_and_sends,
    quiesce_freezes_the_data_path,
    continuity_across_migration,
    pf_state_follows_the_vf,
    pf_forgets_a_saved_guest,
    announce_reaches_the_wire,
    a_second_arrival_within_a_second_is_announced,
    mailbox_abuse_keeps_the_log_valid,
    admin_settings_follow_the_vf,
    admin_settings_owned_by_destination,
    hostile_stream_keeps_admin_settings,
];

const MAP: &regs::RegMap = &regs::IGB;
const WAIT: Duration = Duration::from_secs(5);

/// The PF sends `seqs` to the guest, which must receive exactly them, intact.
/// Frames go in batches smaller than the ring: a full ring drops (DROP_EN).
fn exchange_rx(
    pf: &PfPort,
    g: &mut Guest<'_>,
    seqs: std::ops::Range<u64>,
) -> Result<Vec<u32>, String> {
    let mac = g.mac();
    let mut descs = Vec::new();
    let mut next = seqs.start;
    while next < seqs.end {
        let batch = next..(next + 32).min(seqs.end);
        for seq in batch.clone() {
            pf.send(mac, seq)?;
        }
        let want = (batch.end - batch.start) as usize;
        let got = g.receive(want, WAIT);
        ensure_eq!(got.len(), want, "frames received of {batch:?}");
        for (r, seq) in got.iter().zip(batch.clone()) {
            ensure!(
                r.intact,
                "frame {} in descriptor {} is corrupt or out of order (expected {seq})",
                r.seq,
                r.desc
            );
            ensure_eq!(r.seq, seq, "sequence number");
        }
        descs.extend(got.iter().map(|r| r.desc));
        next = batch.end;
    }
    // Nothing more, nothing twice.
    let extra = g.receive(1, Duration::from_millis(100));
    ensure!(extra.is_empty(), "unexpected extra frames: {extra:?}");
    Ok(descs)
}

/// The guest sends `n` frames; the PF must see each once, intact, in order.
fn exchange_tx(pf: &PfPort, g: &mut Guest<'_>, n: u64) -> Result<(), String> {
    let first = g.state().tx_seq;
    for _ in 0..n {
        s(g.send(pf.mac))?;
    }
    let got = pf.collect(Duration::from_millis(300));
    let seqs: Vec<u64> = got.iter().map(|(_, q, _)| *q).collect();
    ensure_eq!(
        seqs,
        (first..first + n).collect::<Vec<_>>(),
        "sequence numbers the PF received"
    );
    for (src, seq, intact) in got {
        ensure!(intact, "frame {seq} arrived corrupt");
        ensure_eq!(src, g.mac(), "source MAC of frame {seq}");
    }
    Ok(())
}

fn guest_receives_and_sends() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let dev = s(Device::open_default(vf))?;
    let mut g = s(Guest::start(&dev, None))?;
    let pf = PfPort::open()?;
    // Several ring wraps, to prove re-arming works.
    let descs = exchange_rx(&pf, &mut g, 0..(2 * RING_SIZE as u64 + 5))?;
    ensure_eq!(descs[RING_SIZE as usize], 0, "the ring wrapped");
    exchange_tx(&pf, &mut g, 5)?;
    Ok(())
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3)
    })
}

fn quiesce_freezes_the_data_path() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let dev = s(Device::open_default(vf))?;
    let mut g = s(Guest::start(&dev, None))?;
    let pf = PfPort::open()?;
    exchange_rx(&pf, &mut g, 0..10)?;
    s(dev.set_mig_state(mig::STOP))?;
    let bar = g.bar();
    let rdh = bar.read32(MAP.rx.head as usize);
    let tdh = bar.read32(MAP.tx.head as usize);
    let before = fnv(g.memory());
    // Frames to a stopped VF touch nothing: not its buffers, not its head.
    for seq in 1000..1010 {
        pf.send(g.mac(), seq)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    ensure_eq!(
        g.bar().read32(MAP.rx.head as usize),
        rdh,
        "RDH while stopped"
    );
    ensure_eq!(fnv(g.memory()), before, "DMA memory hash while stopped");
    // A TDT write while stopped transmits nothing.
    let (desc, seq) = g.post_tx(pf.mac);
    std::thread::sleep(Duration::from_millis(100));
    ensure_eq!(
        g.bar().read32(MAP.tx.head as usize),
        tdh,
        "TDH after a TDT write while stopped"
    );
    ensure!(
        !g.tx_done(desc),
        "descriptor {desc} written back while stopped"
    );
    let seen = pf.collect(Duration::from_millis(200));
    ensure!(
        seen.is_empty(),
        "the PF received {seen:?} from a stopped VF"
    );
    // Running again: the posted frame goes out, and reception resumes.
    s(dev.set_mig_state(mig::RUNNING))?;
    s(g.wait_tx(desc))?;
    let seen = pf.collect(Duration::from_millis(300));
    ensure_eq!(
        seen.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![seq],
        "frames the PF got after RUNNING"
    );
    let next = g.state().rx_seq;
    exchange_rx(&pf, &mut g, next..next + 10)?;
    Ok(())
}

fn continuity_across_migration() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let pf = PfPort::open()?;
    let src = s(Device::open_default(vfs[0]))?;
    let (memory, stream, src_state) = {
        let mut g = s(Guest::start(&src, None))?;
        exchange_rx(&pf, &mut g, 0..40)?;
        exchange_tx(&pf, &mut g, 7)?;
        // Stop and save, as QEMU does: device state, then RAM.
        let mut fd = s(src.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
        let mut stream = Vec::new();
        s(read_data(&mut fd, &mut stream))?;
        (g.memory().to_vec(), stream, g.state())
    };
    // The source VF is closed: its FLR makes the PF drop its filters.
    drop(src);
    // The ring must be exactly where the source left it: no announce, whose
    // broadcasts the NIC's switch would put in it at once
    // (announce_reaches_the_wire tests that).
    let _quiet = AnnounceOff::on(vfs[1])?;
    let dst = s(Device::open_default(vfs[1]))?;
    // No handshake here: the PF channel replays the VF's RESET and MAC.
    let mut fd = s(dst.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
    s(write_data(&mut fd, &stream))?;
    s(dst.set_mig_state(mig::STOP))?;
    let mut g = s(Guest::adopt(&dst, &memory))?;
    s(dst.set_mig_state(mig::RUNNING))?;
    ensure_eq!(g.state(), src_state, "guest state moved with its memory");
    let bar = g.bar();
    ensure_eq!(
        bar.read32(MAP.rx.dctl as usize) & DCTL_ENABLE,
        DCTL_ENABLE,
        "RX enabled on the destination"
    );
    ensure_eq!(
        bar.read32(MAP.rx.head as usize),
        src_state.rx_next,
        "RDH where the source stopped"
    );
    // Frames sent now land on the destination, at the ring position where
    // the source stopped, in order, intact, none twice.
    let descs = exchange_rx(&pf, &mut g, 40..80)?;
    ensure_eq!(
        descs[0],
        src_state.rx_next,
        "first descriptor used on the destination"
    );
    exchange_tx(&pf, &mut g, 7)?;
    let st = g.state();
    ensure_eq!(
        (st.rx_count, st.rx_bad, st.tx_count),
        (80, 0, 14),
        "guest counters"
    );
    println!("# continuity: source stopped at RX descriptor {}, destination went on from there; 80 frames received, 14 sent, 0 bad", src_state.rx_next);
    Ok(())
}

const GROUP: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x42];
const VID: u16 = 100;

/// The PF's view of VF `vf`: its line in `ip link show` and whether one of
/// the PF's VLAN filters (VLVF) holds `vid` for that VF's pool.
fn pf_view(vf: usize, vid: u16) -> Result<(String, bool), String> {
    let ifname = std::env::var("IVF_PF_IF").map_err(|e| e.to_string())?;
    let (_, out) = host::sh("ip", &["link", "show", &ifname]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("vf {vf} ")))
        .unwrap_or("")
        .trim()
        .to_string();
    let pf = std::env::var("IVF_PF").map_err(|e| e.to_string())?;
    let vlvf = crate::pf::read_pf_regs(&pf, IgbVlvf::OFFSET as usize, IgbVlvf::COUNT)?;
    let vlan = vlvf
        .iter()
        .map(|&v| IgbVlvf(v))
        .any(|v| v.valid() && v.vid() == vid && v.has_pool(vf as u32));
    Ok((line, vlan))
}

pub(crate) fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Unicast, multicast and VLAN-tagged frames from the PF all reach `g`.
fn filters_pass(pf: &PfPort, g: &mut Guest<'_>) -> Result<(), String> {
    let seq = g.state().rx_seq;
    pf.send(g.mac(), seq)?;
    pf.send_raw(&ivf_guest::make_frame(
        GROUP,
        pf.mac,
        ivf_guest::ETHERTYPE_TO_GUEST,
        seq + 1,
    ))?;
    pf.send_raw(&ivf_guest::make_tagged_frame(g.mac(), pf.mac, VID, seq + 2))?;
    let got = g.receive(3, WAIT);
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    ensure_eq!(
        seqs,
        vec![seq, seq + 1, seq + 2],
        "unicast, multicast, VLAN {VID} frames received"
    );
    ensure!(
        got.iter().all(|r| r.intact),
        "a frame arrived corrupt: {got:?}"
    );
    Ok(())
}

fn pf_state_follows_the_vf() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let pf = PfPort::open()?;
    let src = s(Device::open_default(vfs[0]))?;
    let (memory, stream, mac) = {
        let mut g = s(Guest::start(&src, None))?;
        s(g.join_multicast(GROUP))?;
        s(g.add_vlan(VID))?;
        filters_pass(&pf, &mut g)?;
        let (line, vlan) = pf_view(0, VID)?;
        ensure!(line.contains(&mac_text(g.mac())), "PF view of VF0: {line}");
        ensure!(vlan, "no VLVF entry for VLAN {VID} on VF0's pool");
        let mut fd = s(src.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
        let mut stream = Vec::new();
        s(read_data(&mut fd, &mut stream))?;
        (g.memory().to_vec(), stream, g.mac())
    };
    drop(src);
    // VF0's reset made the PF forget its filters.
    let (line0, vlan0) = pf_view(0, VID)?;
    ensure!(
        !line0.contains(&mac_text(mac)),
        "VF0 kept its MAC after its reset: {line0}"
    );
    ensure!(!vlan0, "VF0 kept VLAN {VID} after its reset");
    let dst = s(Device::open_default(vfs[1]))?;
    let mut fd = s(dst.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
    s(write_data(&mut fd, &stream))?;
    let t = std::time::Instant::now();
    s(dst.set_mig_state(mig::STOP))?;
    let load = t.elapsed();
    let mut g = s(Guest::adopt(&dst, &memory))?;
    s(dst.set_mig_state(mig::RUNNING))?;
    println!(
        "# pf_state_follows_the_vf: RESUMING -> STOP (PF replay of 4 requests + register load) took {} us under TCG; stream {} bytes",
        load.as_micros(),
        stream.len()
    );
    profiles_account_for_the_steps(vfs[0], vfs[1], load)?;
    // The PF's own view of VF1 is now what it was of VF0, re-applied by the
    // PF driver itself from the replayed mailbox requests.
    let (line1, vlan1) = pf_view(1, VID)?;
    ensure!(line1.contains(&mac_text(mac)), "PF view of VF1: {line1}");
    ensure!(vlan1, "no VLVF entry for VLAN {VID} on VF1's pool");
    filters_pass(&pf, &mut g)?;
    println!("# pf_state_follows_the_vf: {line1}");
    Ok(())
}

/// The driver's `migration_profile` of the source's save and the
/// destination's load: the parts in the order they run, no more time than
/// the ioctl took, the save's MMIO exactly the HAL's reads of an igb VF,
/// and a replay that did MMIO of its own.
fn profiles_account_for_the_steps(
    src: sysfs::Bdf,
    dst: sysfs::Bdf,
    load_wall: Duration,
) -> Result<(), String> {
    let step = |vf, name: &str| -> Result<sysfs::StepProfile, String> {
        s(sysfs::migration_profile(vf))?
            .into_iter()
            .find(|p| p.step == name)
            .ok_or(format!("{vf}: no {name} in migration_profile"))
    };
    let save = step(src, "save")?;
    let load = step(dst, "load")?;
    for p in [&save, &load] {
        let sum: u64 = p.parts.iter().map(|(_, ns)| ns).sum();
        ensure!(
            sum == p.total_ns,
            "{}: the parts add up to {sum} ns, the total is {} ns",
            p.step,
            p.total_ns
        );
        println!(
            "# pf_state_follows_the_vf: {} {} ns, {} reads {} writes, {:?}",
            p.step, p.total_ns, p.reads, p.writes, p.parts
        );
    }
    let names = |p: &sysfs::StepProfile| p.parts.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    ensure_eq!(
        names(&save),
        // STOP -> STOP_COPY: no PRE_COPY made the file before the stop.
        ["new_file", "bar", "mmio", "pf_log", "pf_admin", "encode", "publish", "other"],
        "the save's parts"
    );
    ensure_eq!(
        names(&load),
        [
            "decode",
            "plan",
            "apply",
            "mailbox_lock",
            "bar",
            "replay",
            "mmio",
            "other"
        ],
        "the load's parts"
    );
    // hal::save reads every queue register of both pairs, EIAC, EIAM, the
    // IVARs, IVAR_MISC and the EITRs; nothing else, no write.
    let want = MAP.max_queue_pairs as usize
        * (ivf_common::hal::RxQueue::LEN + ivf_common::hal::TxQueue::LEN)
        + 2
        + MAP.ivar_count as usize
        + 1
        + MAP.vectors as usize;
    ensure_eq!(
        (save.reads, save.writes),
        (want as u64, 0),
        "the save's MMIO"
    );
    let replay = load.parts.iter().find(|(n, _)| n == "replay").map(|p| p.1);
    ensure!(
        replay.is_some_and(|ns| ns > 0),
        "no replay time: {:?}",
        load.parts
    );
    ensure!(
        load.total_ns <= load_wall.as_nanos() as u64,
        "the load took {} ns by its profile, {} ns by the ioctl's clock",
        load.total_ns,
        load_wall.as_nanos()
    );
    Ok(())
}

/// The announce of a VF switched off while this lives (a test that reads
/// the RX ring right after RUNNING), on again after.
struct AnnounceOff(ivf_vfio::sysfs::Bdf);

impl AnnounceOff {
    fn on(vf: ivf_vfio::sysfs::Bdf) -> Result<Self, String> {
        s(sysfs::set_announce(vf, false))?;
        Ok(AnnounceOff(vf))
    }
}

impl Drop for AnnounceOff {
    fn drop(&mut self) {
        let _ = sysfs::set_announce(self.0, true);
    }
}

/// A guest's extra unicast filter (igb's MAC filter ADD).
const EXTRA_MAC: [u8; 6] = [0x02, 0x49, 0x56, 0xee, 0x00, 0x01];

/// After VF0's save was refused (its guest holds an extra MAC filter,
/// which no stream carries) and VF0 closed, the PF's switch delivers
/// nothing to VF0's pool any more:
/// no receive-address entry (the guest's MAC, its extra filter) and no
/// VLAN filter. Upstream igb's own reset handling leaves the RAR of the
/// guest's MAC and the extra filter behind; the driver's forget at close
/// removes them.
fn pf_forgets_a_saved_guest() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let pf = std::env::var("IVF_PF").map_err(|e| e.to_string())?;
    let src = s(Device::open_default(vfs[0]))?;
    let before = s(sysfs::pf_forgets(vfs[0]))?;
    let mac = {
        let mut g = s(Guest::start(&src, None))?;
        s(g.join_multicast(GROUP))?;
        s(g.add_vlan(VID))?;
        s(g.add_mac_filter(EXTRA_MAC))?;
        // What the test reads is what the PF holds: the guest's filters
        // are there while it runs.
        let (rars, vlans) = crate::pf::pool_filters(&pf, 0)?;
        let macs: Vec<[u8; 6]> = rars.iter().map(|r| r.1).collect();
        ensure!(
            macs.contains(&g.mac()) && macs.contains(&EXTRA_MAC) && vlans.contains(&VID),
            "while the guest runs, VF0's pool has RAR {rars:?} and VLANs {vlans:?}"
        );
        // igb keeps extra MAC filters at the PF that the stream cannot
        // carry: the save is refused, naming them, and the guest runs on.
        match src.set_mig_state(mig::STOP_COPY) {
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {}
            other => {
                return Err(format!(
                    "STOP_COPY with an extra MAC filter at the PF: {:?}, not EOPNOTSUPP",
                    other.map(|f| f.is_some())
                ))
            }
        }
        ensure_eq!(
            s(src.mig_state())?,
            mig::RUNNING,
            "state after the refused save"
        );
        g.mac()
    };
    drop(src);
    let (rars, mut vlans) = crate::pf::pool_filters(&pf, 0)?;
    // VLAN 0 (untagged) is the PF's own entry for every reset VF.
    vlans.retain(|&v| v != 0);
    ensure!(
        rars.is_empty(),
        "VF0 was closed, yet the PF still delivers to its pool: RAR {:?} (the guest's MAC {})",
        rars.iter()
            .map(|(n, m)| format!("{n}: {}", mac_text(*m)))
            .collect::<Vec<_>>(),
        mac_text(mac)
    );
    ensure!(
        vlans.is_empty(),
        "VF0's pool is still in VLAN filters {vlans:?}"
    );
    ensure_eq!(
        s(sysfs::pf_forgets(vfs[0]))?,
        before + 1,
        "pf_forgets of VF0 (one at its close)"
    );
    println!("# pf_forgets_a_saved_guest: the save refused (EOPNOTSUPP: an extra MAC filter); after the close VF0's pool has no RAR and no VLAN filter (the guest's MAC {}, its extra filter {}, VLAN {VID} were there)", mac_text(mac), mac_text(EXTRA_MAC));
    Ok(())
}

/// Moves the guest `g` on `src` to `dst` (save, load, adopt, run) and
/// returns it there.
fn move_guest<'a>(src: &Device, dst: &'a Device, g: Guest<'_>) -> Result<Guest<'a>, String> {
    let mut fd = s(src.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
    let mut stream = Vec::new();
    s(read_data(&mut fd, &mut stream))?;
    let memory = g.memory().to_vec();
    drop(g);
    drop(fd);
    let mut fd = s(dst.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
    s(write_data(&mut fd, &stream))?;
    s(dst.set_mig_state(mig::STOP))?;
    let g = s(Guest::adopt(dst, &memory))?;
    s(dst.set_mig_state(mig::RUNNING))?;
    Ok(g)
}

/// When the guest arrives on the destination VF (RUNNING after a load),
/// the driver announces it on the PF's wire: RARP from its MAC, once
/// untagged and once in its VLAN, 5 rounds, seen in the capture of the
/// NIC's wire; and with the VF's `announce` off, nothing.
fn announce_reaches_the_wire() -> Outcome {
    let vfs = host::need_vfs(2)?;
    for (vf, on) in [(vfs[0], true), (vfs[1], true)] {
        s(sysfs::set_announce(vf, on))?;
    }
    let before = s(sysfs::announce_stats(vfs[1]))?;
    let src = s(Device::open_default(vfs[0]))?;
    let mut g = s(Guest::start(&src, None))?;
    s(g.add_vlan(VID))?;
    let mac = g.mac();
    let wire_before = crate::pf::wire_rarps_from(mac)?.len();
    let dst = s(Device::open_default(vfs[1]))?;
    let t = std::time::Instant::now();
    let g = move_guest(&src, &dst, g)?;
    // 5 rounds over 800 ms; polled, not timed.
    let mut rarps = Vec::new();
    while t.elapsed() < Duration::from_secs(10) {
        rarps = crate::pf::wire_rarps_from(mac)?.split_off(wire_before);
        if rarps.len() >= 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = t.elapsed();
    let untagged = rarps.iter().filter(|v| v.is_none()).count();
    let tagged = rarps.iter().filter(|v| **v == Some(VID)).count();
    let st = s(sysfs::announce_stats(vfs[1]))?;
    ensure_eq!(
        (untagged, tagged, rarps.len()),
        (5, 5, 10),
        "RARP frames from the guest's MAC {} on the wire (untagged, VLAN {VID}, all); VF1's announce_stats then {st:?}, before {before:?}",
        mac_text(mac)
    );
    ensure_eq!(
        (
            st.announces - before.announces,
            st.rounds - before.rounds,
            st.sent - before.sent,
            st.failed - before.failed
        ),
        (1, 5, 10, 0),
        "VF1's announce_stats (announces, rounds, sent, failed) over the move"
    );
    println!(
        "# announce_reaches_the_wire: 10 RARP frames from {} (5 untagged, 5 in VLAN {VID}) on the wire within {} ms of the load",
        mac_text(mac),
        seen.as_millis()
    );
    // Switched off on the next destination: the guest moves back, unheard.
    s(sysfs::set_announce(vfs[0], false))?;
    drop(src);
    let back = s(Device::open_default(vfs[0]))?;
    let wire_before = crate::pf::wire_rarps_from(mac)?.len();
    let res = move_guest(&dst, &back, g).map(drop);
    s(sysfs::set_announce(vfs[0], true))?;
    res?;
    std::thread::sleep(Duration::from_millis(1500));
    let after = crate::pf::wire_rarps_from(mac)?.len() - wire_before;
    ensure_eq!(after, 0, "RARP frames on the wire with VF0's announce off");
    Ok(())
}

/// Loads `stream` into `vf` with `memory`'s guest and runs it (the
/// announce starts); returns the device, open.
fn arrive(vf: sysfs::Bdf, stream: &[u8], memory: &[u8]) -> Result<Device, String> {
    let dev = s(Device::open_default(vf))?;
    {
        let mut fd = s(dev.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
        s(write_data(&mut fd, stream))?;
        s(dev.set_mig_state(mig::STOP))?;
        let g = s(Guest::adopt(&dev, memory))?;
        s(dev.set_mig_state(mig::RUNNING))?;
        drop(g);
    }
    Ok(dev)
}

/// The announce's rate limit (one a second per VF, whoever the user)
/// delays an arrival, never drops it: the same guest arrives on VF1 twice
/// in a row (the second user opens VF1 as soon as the first closed it),
/// and the second arrival's announce goes out whole, however soon after the
/// first it came. Found on Debian's kernel, where the samples run fast
/// enough that a test's announce came within a second of the previous
/// test's and was not sent.
fn a_second_arrival_within_a_second_is_announced() -> Outcome {
    let vfs = host::need_vfs(2)?;
    s(sysfs::set_announce(vfs[1], true))?;
    let (memory, stream, mac) = {
        let src = s(Device::open_default(vfs[0]))?;
        let g = s(Guest::start(&src, None))?;
        let mut fd = s(src.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
        let mut stream = Vec::new();
        s(read_data(&mut fd, &mut stream))?;
        (g.memory().to_vec(), stream, g.mac())
    };
    let stats = || s(sysfs::announce_stats(vfs[1]));
    let poll =
        |done: &dyn Fn(&sysfs::AnnounceStats) -> bool| -> Result<sysfs::AnnounceStats, String> {
            let t = std::time::Instant::now();
            let mut st = stats()?;
            while !done(&st) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
                st = stats()?;
            }
            Ok(st)
        };
    let before = stats()?;
    let first = arrive(vfs[1], &stream, &memory)?;
    // The first announce's first round is out: the second arrival comes
    // within the limit's second of it.
    poll(&|st| st.rounds > before.rounds)?;
    let t = std::time::Instant::now();
    drop(first);
    // The close ended the first announce: its count is final here.
    let mid = stats()?;
    let wire_mid = crate::pf::wire_rarps_from(mac)?.len();
    let dev = arrive(vfs[1], &stream, &memory)?;
    let between = t.elapsed();
    let st = poll(&|st| st.rounds >= mid.rounds + 5)?;
    let rarps = crate::pf::wire_rarps_from(mac)?.len() - wire_mid;
    drop(dev);
    println!(
        "# a_second_arrival_within_a_second_is_announced: second arrival {} ms after the first's first round was seen; over it {} rounds, {} sent, {} limited; {rarps} RARP frames on the wire",
        between.as_millis(),
        st.rounds - mid.rounds,
        st.sent - mid.sent,
        st.limited - mid.limited
    );
    ensure_eq!(
        (st.announces - mid.announces, st.rounds - mid.rounds, st.sent - mid.sent, st.failed - mid.failed),
        (1, 5, 5, 0),
        "the second announce (announces, rounds, frames sent, failed): one whole, its guest has no VLAN"
    );
    ensure_eq!(
        rarps,
        5,
        "RARP frames from {} on the wire after the second arrival",
        mac_text(mac)
    );
    Ok(())
}

pub(crate) fn ip_vf(vf: usize, settings: &[&str]) -> Result<(), String> {
    let ifname = std::env::var("IVF_PF_IF").map_err(|e| e.to_string())?;
    let vf = vf.to_string();
    let mut args = vec!["link", "set", &ifname, "vf", &vf];
    args.extend_from_slice(settings);
    let (ok, out) = host::sh("ip", &args);
    ensure!(ok, "ip {}: {out}", args.join(" "));
    Ok(())
}

/// Saves VF0 running a guest, with its PF settings as they are.
fn save_vf0_guest(vf0: ivf_vfio::sysfs::Bdf) -> Result<(Vec<u8>, Vec<u8>), String> {
    let src = s(Device::open_default(vf0))?;
    let g = s(Guest::start(&src, None))?;
    let mut fd = s(src.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
    let mut stream = Vec::new();
    s(read_data(&mut fd, &mut stream))?;
    Ok((g.memory().to_vec(), stream))
}

const SRC_SETTINGS: [&str; 6] = ["spoofchk", "off", "trust", "on", "max_tx_rate", "100"];
pub(crate) const DEFAULT_SETTINGS: [&str; 6] =
    ["spoofchk", "on", "trust", "off", "max_tx_rate", "0"];

/// Runs `f` with the module reloaded with `param`, then reloads it with its
/// defaults, whatever `f` returned.
fn with_module_param(param: &str, f: impl FnOnce() -> Outcome) -> Outcome {
    let vfs = host::need_vfs(2)?;
    host::unload()?;
    let module = host::module_path();
    let (ok, out) = host::sh("insmod", &[module.to_str().unwrap(), param]);
    ensure!(ok, "insmod {param}: {out}");
    let result = (|| {
        for vf in &vfs {
            host::bind_ours(*vf)?;
        }
        f()
    })();
    host::unload()?;
    host::load_and_bind_all()?;
    result
}

/// The destination's administrator let the stream's settings apply
/// (`admin_settings_owned_by_destination=0`): they follow the VF.
fn admin_settings_follow_the_vf() -> Outcome {
    let vfs = host::need_vfs(2)?;
    with_module_param("admin_settings_owned_by_destination=0", || {
        ip_vf(0, &SRC_SETTINGS)?;
        ip_vf(1, &DEFAULT_SETTINGS)?;
        let (memory, stream) = save_vf0_guest(vfs[0])?;
        let dst = s(Device::open_default(vfs[1]))?;
        let mut fd = s(dst.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
        s(write_data(&mut fd, &stream))?;
        s(dst.set_mig_state(mig::STOP))?;
        let _g = s(Guest::adopt(&dst, &memory))?;
        s(dst.set_mig_state(mig::RUNNING))?;
        let (line, _) = pf_view(1, 0)?;
        for want in ["spoof checking off", "trust on", "max_tx_rate 100Mbps"] {
            ensure!(line.contains(want), "VF1 at the PF lacks '{want}': {line}");
        }
        ip_vf(0, &DEFAULT_SETTINGS)?;
        ip_vf(1, &DEFAULT_SETTINGS)
    })
}

/// By default the destination's administrator owns the VF's settings: a
/// stream whose settings differ is refused, the state stays RESUMING and
/// nothing changed.
fn admin_settings_owned_by_destination() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let result = (|| {
        ip_vf(0, &SRC_SETTINGS)?;
        ip_vf(1, &DEFAULT_SETTINGS)?;
        let (_, stream) = save_vf0_guest(vfs[0])?;
        let dst = s(Device::open_default(vfs[1]))?;
        let mut fd = s(dst.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
        s(write_data(&mut fd, &stream))?;
        match dst.set_mig_state(mig::STOP) {
            Err(err) => ensure_eq!(err.errno(), Some(libc::EREMCHG), "settings that differ"),
            Ok(_) => return Err("the destination took settings its administrator owns".into()),
        }
        ensure_eq!(
            s(dst.mig_state())?,
            mig::RESUMING,
            "state after the refusal"
        );
        let (line, _) = pf_view(1, 0)?;
        ensure!(
            line.contains("spoof checking on"),
            "VF1's settings changed anyway: {line}"
        );
        s(dst.reset())?;
        Ok(())
    })();
    ip_vf(0, &DEFAULT_SETTINGS)?;
    result
}

/// Byte range of the payload of the first section tagged `tag` in `frame`.
pub(crate) fn section_payload(frame: &[u8], tag: u16) -> Option<std::ops::Range<usize>> {
    let mut at = usize::from(ivf_common::stream::parse_header(frame).ok()?.header_len);
    while at + SECTION_HEADER_LEN <= frame.len() {
        let t = u16::from_le_bytes([frame[at], frame[at + 1]]);
        let len = u32::from_le_bytes(frame[at + 4..at + 8].try_into().ok()?) as usize;
        let payload = at + SECTION_HEADER_LEN..at + SECTION_HEADER_LEN + len;
        if t == tag {
            return Some(payload);
        }
        at = payload.end;
    }
    None
}

/// Rewrites the PF_ADMIN section of a saved `stream` with `change` and
/// reseals the state frame's CRC, as a VFIO user forging a stream for its
/// own VF would; returns the settings as saved.
pub(crate) fn forge_admin(
    stream: &mut [u8],
    change: impl FnOnce(&mut AdminConfig),
) -> Result<AdminConfig, String> {
    let frame = stream
        .get_mut(ivf_common::state::COMPAT_FRAME_LEN..)
        .ok_or("the saved stream is shorter than its compatibility frame")?;
    let r = section_payload(frame, ivf_common::state::TAG_PF_ADMIN)
        .ok_or("no PF_ADMIN section in the saved stream")?;
    let saved = AdminConfig::decode(&frame[r.clone()]).ok_or("PF_ADMIN does not decode")?;
    let mut cfg = saved;
    change(&mut cfg);
    let mut b = [0u8; ADMIN_LEN];
    cfg.encode(&mut b);
    frame[r].copy_from_slice(&b);
    ivf_common::stream::reseal(frame);
    Ok(saved)
}

/// A VFIO user forges a stream for its own VF (CRC resealed) that asks for
/// trust, no spoof checking, no port VLAN and another tenant's MAC: the
/// load is refused with EREMCHG and the administrator's settings stand.
fn hostile_stream_keeps_admin_settings() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let other_tenant = "02:00:00:00:99:99";
    let admin = ["vlan", "100", "spoofchk", "on", "trust", "off"];
    ip_vf(0, &admin)?;
    let result = (|| {
        let dev = s(Device::open_default(vf))?;
        let mut fd = s(dev.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
        let mut stream = Vec::new();
        s(read_data(&mut fd, &mut stream))?;
        drop(fd);
        s(dev.set_mig_state(mig::STOP))?;
        let saved = forge_admin(&mut stream, |cfg| {
            cfg.trusted = true;
            cfg.spoofchk = false;
            cfg.vlan = 0;
            cfg.mac = [2, 0, 0, 0, 0x99, 0x99];
        })?;
        ensure_eq!(saved.vlan, 100, "the saved port VLAN");
        let mut fd = s(dev.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
        s(write_data(&mut fd, &stream))?;
        match dev.set_mig_state(mig::STOP) {
            Err(err) => ensure_eq!(err.errno(), Some(libc::EREMCHG), "a forged PF_ADMIN"),
            Ok(_) => return Err("a forged PF_ADMIN section was loaded".into()),
        }
        ensure_eq!(
            s(dev.mig_state())?,
            mig::RESUMING,
            "state after the refusal"
        );
        let (line, _) = pf_view(0, 0)?;
        for want in ["vlan 100", "spoof checking on", "trust off"] {
            ensure!(line.contains(want), "VF0 lost '{want}': {line}");
        }
        ensure!(
            !line.contains(other_tenant),
            "VF0 took the forged MAC: {line}"
        );
        Ok(())
    })();
    ip_vf(0, &["vlan", "0"])?;
    ip_vf(0, &DEFAULT_SETTINGS)?;
    result
}

fn mailbox_abuse_keeps_the_log_valid() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let dev = s(Device::open_default(vf))?;
    let g = s(Guest::start(&dev, None))?;
    let mac = g.mac();
    let bar = g.bar();
    ensure!(
        !bar.is_mapped(MAP.mbx_ctrl as usize),
        "the mailbox page is mapped: it must be trapped"
    );
    // A hostile guest: garbage words, unknown types, an oversized multicast
    // count, half-written messages and REQ storms, never reading replies.
    let mut x: u32 = 0x1234_5678;
    for i in 0..3000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let word = (x as usize % 16) * 4;
        match i % 5 {
            0 => bar.write32(MAP.mbx_mem as usize, 0x7f | x & 0x00ff_0000),
            1 => bar.write32(MAP.mbx_mem as usize, msg::word0(msg::SET_MULTICAST, 200)),
            2 => bar.write32(MAP.mbx_mem as usize + word, x),
            3 => {
                let _ = bar.read32(MAP.mbx_mem as usize + word);
            }
            _ => bar.write32(MAP.mbx_ctrl as usize, 1 | x & 0x6),
        }
    }
    // The VF's driver recovers the way igbvf does: a reset and RESET again.
    drop(g);
    let mac2 = s(ivf_guest::pf_handshake(&dev, Some(mac)))?;
    ensure_eq!(mac2, mac, "MAC after recovery");
    let mut fd = s(dev.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
    let mut stream = Vec::new();
    s(read_data(&mut fd, &mut stream))?;
    let frame = s(ivf_common::state::decode_frame(
        &stream[ivf_common::state::COMPAT_FRAME_LEN..],
    ))?;
    let log = frame.pf.mbx.ok_or("no PF_MBX section")?;
    ensure_eq!(log.mac, Some(mac), "the log's MAC after the abuse");
    ensure!(
        log.mc_count as usize <= ivf_common::mbx::MAX_MC,
        "multicast count {}",
        log.mc_count
    );
    Ok(())
}
