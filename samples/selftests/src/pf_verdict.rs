// SPDX-License-Identifier: GPL-2.0

//! The host speaks for a guest only as far as its PF allows (issue 25).
//! What the driver logs of the mailbox is the PF's verdict as the device
//! gave it, whatever a racing thread of the VFIO user writes into its read
//! buffer or into the mailbox while the driver replays a stream; the
//! announce after a move names only MACs the PF holds for the VF; and no
//! loop of refused ioctls fills the kernel log.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ivf_common::hal::RegIo;
use ivf_common::mbx::{msg, MbxLog, Message, VfMailbox, ENCODED_LEN};
use ivf_common::regs;
use ivf_common::state::{decode_frame, COMPAT_FRAME_LEN, TAG_PF_MBX};
use ivf_guest::Guest;
use ivf_vfio::uapi::{mig, VFIO_PCI_BAR0_REGION_INDEX as BAR0};
use ivf_vfio::{read_data, sysfs, write_data, Bar, Device};

use crate::datapath::{forge_admin, ip_vf, mac_text, section_payload, DEFAULT_SETTINGS};
use crate::host;
use crate::ktap::{s, Outcome, Test};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    pf_verdict_survives_a_raced_reply,
    announce_speaks_only_what_the_pf_allows,
    user_lines_are_bounded,
];

const MAP: &regs::RegMap = &regs::IGB;
/// The MAC the administrator gives VF0 (spoof checking on, trust off).
const ADMIN: [u8; 6] = [0x02, 0x49, 0x56, 0xad, 0x00, 0x01];
/// A MAC the VF may not use: the gateway's (VRRP's first).
const GATEWAY: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];
/// The PF's NACK of SET_MAC_ADDR, forged into an ACK.
const FORGED_ACK: u32 = msg::SET_MAC_ADDR | msg::ACK;

/// Runs `f` with VF0 given the administrator's MAC [`ADMIN`], spoof
/// checking on and trust off; VF0's MAC is cleared after.
fn with_admin_mac(f: impl FnOnce() -> Outcome) -> Outcome {
    ip_vf(
        0,
        &["mac", &mac_text(ADMIN), "spoofchk", "on", "trust", "off"],
    )?;
    let res = f();
    ip_vf(0, &["mac", "00:00:00:00:00:00"])?;
    ip_vf(0, &DEFAULT_SETTINGS)?;
    res
}

/// The PF_MBX log of a stream saved from `dev` now.
fn saved_log(dev: &Device) -> Result<MbxLog, String> {
    let mut fd = s(dev.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
    let mut stream = Vec::new();
    s(read_data(&mut fd, &mut stream))?;
    drop(fd);
    s(dev.set_mig_state(mig::RUNNING))?;
    let frame = s(decode_frame(&stream[COMPAT_FRAME_LEN..]))?;
    frame.pf.mbx.ok_or_else(|| "no PF_MBX section".into())
}

/// BAR0 as a VF driver uses it, but the reply's first word is read into a
/// buffer that another thread keeps overwriting with [`FORGED_ACK`].
struct RacedReply<'a> {
    bar: &'a Bar,
    fd: i32,
    /// Device-file offset of the reply's first word.
    reply_at: i64,
    buf: &'a AtomicU32,
}

impl RegIo for RacedReply<'_> {
    fn read32(&mut self, off: u32) -> u32 {
        if off != MAP.mbx_mem {
            return self.bar.read32(off as usize);
        }
        self.buf.store(0, Ordering::SeqCst);
        // SAFETY: `buf` is 4 writable bytes that live across the call; the
        // kernel writes them as another thread does (the race under test).
        let n = unsafe { libc::pread(self.fd, self.buf.as_ptr().cast(), 4, self.reply_at) };
        if n != 4 {
            return u32::MAX;
        }
        self.buf.load(Ordering::SeqCst)
    }

    fn write32(&mut self, off: u32, value: u32) {
        self.bar.write32(off as usize, value);
    }

    fn delay_us(&mut self, us: u32) {
        std::thread::sleep(Duration::from_micros(u64::from(us)));
    }
}

/// The guest asks for the gateway's MAC and the PF refuses (the VF has the
/// administrator's MAC, trust is off); a second thread of the VFIO user
/// rewrites the reply in its read buffer as an ACK. The driver's log, read
/// from a saved stream, keeps the PF's NACK: the snoop sees the device's
/// word, not the user's buffer.
fn pf_verdict_survives_a_raced_reply() -> Outcome {
    const ROUNDS: u32 = 50;
    let vf = host::need_vfs(1)?[0];
    with_admin_mac(|| {
        let dev = s(Device::open_default(vf))?;
        let g = s(Guest::start(&dev, None))?;
        ensure_eq!(g.mac(), ADMIN, "the guest's MAC from the PF's RESET reply");
        let reply_at = (s(dev.region_info(BAR0))?.offset + u64::from(MAP.mbx_mem)) as i64;
        let buf = AtomicU32::new(0);
        let done = AtomicBool::new(false);
        let forged_seen = std::thread::scope(|sc| {
            sc.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    buf.store(FORGED_ACK, Ordering::Relaxed);
                    std::hint::spin_loop();
                }
            });
            let mut forged = 0;
            for _ in 0..ROUNDS {
                let mut io = RacedReply {
                    bar: g.bar(),
                    fd: dev.as_raw_fd(),
                    reply_at,
                    buf: &buf,
                };
                if VfMailbox::new(&mut io, MAP)
                    .exchange(&Message::set_mac(&GATEWAY))
                    .is_ok()
                {
                    forged += 1;
                }
            }
            done.store(true, Ordering::Relaxed);
            forged
        });
        let log = saved_log(&dev)?;
        ensure!(
            log.mac != Some(GATEWAY),
            "the driver logged SET_MAC_ADDR {} as accepted: the user forged the PF's NACK ({forged_seen} of {ROUNDS} replies read forged)",
            mac_text(GATEWAY)
        );
        println!(
            "# pf_verdict_survives_a_raced_reply: {forged_seen} of {ROUNDS} replies came back forged in the user's buffer; the log keeps the PF's verdict (MAC {:?})",
            log.mac.map(mac_text)
        );
        Ok(())
    })
}

/// A stream whose log names the gateway's MAC, loaded while a thread of
/// the VFIO user keeps writing an ACK of SET_MAC_ADDR into the mailbox:
/// the replay reads the PF's NACK (the load fails and leaves the VF in
/// ERROR), and no frame from the gateway's MAC reaches the wire.
fn announce_speaks_only_what_the_pf_allows() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    s(sysfs::set_announce(vf, true))?;
    with_admin_mac(|| {
        let (memory, mut stream) = {
            let dev = s(Device::open_default(vf))?;
            let g = s(Guest::start(&dev, None))?;
            let mut fd = s(dev.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
            let mut stream = Vec::new();
            s(read_data(&mut fd, &mut stream))?;
            (g.memory().to_vec(), stream)
        };
        let frame = &mut stream[COMPAT_FRAME_LEN..];
        let r = section_payload(frame, TAG_PF_MBX).ok_or("no PF_MBX section")?;
        let mut log = s(decode_frame(frame))?.pf.mbx.ok_or("no PF_MBX log")?;
        log.mac = Some(GATEWAY);
        let mut b = [0u8; ENCODED_LEN];
        log.encode(&mut b);
        frame[r].copy_from_slice(&b);
        ivf_common::stream::reseal(frame);
        let before = crate::pf::wire_rarps_from(GATEWAY)?.len();
        let dev = s(Device::open_default(vf))?;
        let mut fd = s(dev.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
        s(write_data(&mut fd, &stream))?;
        let done = AtomicBool::new(false);
        let (load, writes) = std::thread::scope(|sc| {
            let racer = sc.spawn(|| {
                let mut n = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let _ =
                        dev.write_region(BAR0, u64::from(MAP.mbx_mem), &FORGED_ACK.to_le_bytes());
                    n += 1;
                }
                n
            });
            let load = dev.set_mig_state(mig::STOP);
            done.store(true, Ordering::Relaxed);
            (load, racer.join().unwrap_or(0))
        });
        if load.is_ok() {
            let _g = s(Guest::adopt(&dev, &memory))?;
            s(dev.set_mig_state(mig::RUNNING))?;
        }
        // Five rounds go out over 800 ms.
        std::thread::sleep(Duration::from_millis(1500));
        let from_gateway = crate::pf::wire_rarps_from(GATEWAY)?.len() - before;
        ensure_eq!(
            from_gateway,
            0,
            "RARP frames from {} (a MAC the PF refused the VF) on the wire after the load ({:?}, {writes} racing writes)",
            mac_text(GATEWAY),
            load.as_ref().map(|_| ())
        );
        ensure!(
            load.is_err(),
            "the load of a stream whose SET_MAC_ADDR the PF refuses succeeded: the replay read a forged ACK ({writes} racing writes)"
        );
        s(dev.reset())?;
        println!(
            "# announce_speaks_only_what_the_pf_allows: the load failed on the PF's NACK ({}) despite {writes} racing writes of an ACK; no frame from {}",
            load.err().map(|e| e.to_string()).unwrap_or_default(),
            mac_text(GATEWAY)
        );
        Ok(())
    })
}

/// Lines about the VFs in the kernel log now.
fn vf_lines() -> usize {
    host::dmesg_lines()
        .iter()
        .filter(|l| l.contains("intel_vf_vfio_pci") || l.contains("intel-vf-vfio"))
        .count()
}

/// Most lines one loop of 10,000 refusals may add: two windows of the
/// driver's limiter and what it says it held back.
const LOOP_LINES: usize = 15;
const LOOP_ROUNDS: u32 = 10_000;

/// Runs `round` [`LOOP_ROUNDS`] times and checks the kernel log grew by at
/// most [`LOOP_LINES`] lines. (Whether a loop prints at all depends on
/// what the samples before it left of the VF's limiter for the minute.)
fn bounded(what: &str, mut round: impl FnMut() -> Result<(), String>) -> Outcome {
    let before = vf_lines();
    let t = std::time::Instant::now();
    for _ in 0..LOOP_ROUNDS {
        round()?;
    }
    let added = vf_lines() - before;
    ensure!(
        added <= LOOP_LINES,
        "{LOOP_ROUNDS} rounds of {what} added {added} kernel-log lines (at most {LOOP_LINES})"
    );
    println!(
        "# user_lines_are_bounded: {LOOP_ROUNDS} rounds of {what} in {} ms added {added} lines",
        t.elapsed().as_millis()
    );
    Ok(())
}

/// A VFIO user loops ioctls the driver refuses or remarks on; each loop of
/// 10,000 adds at most a handful of kernel-log lines.
fn user_lines_are_bounded() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let dev = s(Device::open_default(vf))?;
    // RESUMING -> STOP with nothing written.
    let fd = s(dev.set_mig_state(mig::RESUMING))?;
    bounded("STOP with an empty resume file", || {
        match dev.set_mig_state(mig::STOP) {
            Ok(_) => Err("an empty stream was loaded".into()),
            Err(_) => Ok(()),
        }
    })?;
    drop(fd);
    s(dev.reset())?;
    // A stream whose PF settings differ from the destination's (EREMCHG,
    // which reads the PF's settings under rtnl each time).
    let mut stream = {
        let _g = s(Guest::start(&dev, None))?;
        let mut fd = s(dev.set_mig_state(mig::STOP_COPY))?.ok_or("no STOP_COPY fd")?;
        let mut stream = Vec::new();
        s(read_data(&mut fd, &mut stream))?;
        drop(fd);
        s(dev.set_mig_state(mig::STOP))?;
        stream
    };
    forge_admin(&mut stream, |cfg| cfg.trusted = !cfg.trusted)?;
    let mut fd = s(dev.set_mig_state(mig::RESUMING))?.ok_or("no RESUMING fd")?;
    s(write_data(&mut fd, &stream))?;
    bounded("STOP refused EREMCHG", || {
        match dev.set_mig_state(mig::STOP) {
            Err(e) if e.errno() == Some(libc::EREMCHG) => Ok(()),
            other => Err(format!(
                "STOP of a stream with other PF settings: {other:?}"
            )),
        }
    })?;
    drop(fd);
    s(dev.reset())?;
    // A mailbox request posted and never answered, at every STOP_COPY.
    let g = s(Guest::start(&dev, None))?;
    g.bar()
        .write32(MAP.mbx_mem as usize, msg::word0(msg::SET_VLAN, 1));
    g.bar().write32(MAP.mbx_mem as usize + 4, 7);
    g.bar().write32(MAP.mbx_ctrl as usize, 1);
    bounded("STOP_COPY with a mailbox request in flight", || {
        let fd = s(dev.set_mig_state(mig::STOP_COPY))?;
        drop(fd);
        s(dev.set_mig_state(mig::STOP))?;
        Ok(())
    })?;
    Ok(())
}
