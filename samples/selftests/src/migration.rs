// SPDX-License-Identifier: GPL-2.0

//! The migration core: FSM arcs, the data stream, quiesce, save and restore
//! of an igb-family VF, and refusal of bad streams.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ivf_common::hal::MAX_QUEUES;
use ivf_common::ids::Family;
use ivf_common::regs::{self, DCTL_ENABLE};
use ivf_common::state::{
    self, decode_frame, header_for, write_state_frame, COMPAT_FRAME_LEN, TAG_DEVICE, TAG_PF_MBX,
    TAG_QUEUES,
};
use ivf_common::stream::{self, Header, SECTION_MANDATORY};
use ivf_vfio::sysfs::Bdf;
use ivf_vfio::uapi::{mig, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY};
use ivf_vfio::{precopy_info, read_data, write_data, Device, MigrationFlags};

use crate::host;
use crate::ktap::{Outcome, Test};
use crate::stream_build::{build, sections};
use crate::{ensure, ensure_eq, tests};

/// The tests of this file, in run order.
pub const TESTS: &[&Test] = tests![
    migration_flags_advertised,
    fsm_every_arc,
    fsm_invalid_targets_rejected,
    stop_copy_stream_decodes,
    precopy_initial_bytes_then_state,
    quiesce_disables_queues_and_irqs,
    resume_into_another_vf,
    bad_streams_rejected,
    reset_during_migration_returns_to_running,
    close_during_transfer_ends_the_fd,
    precopy_header_refused_before_stop,
    error_state_and_recovery_by_reset,
    vfmig_save_inspect_check_load,
    stream_is_host_independent,
    vfmig_busy_race,
    stream_saved_on_each_arch_loads,
];

const MAP: &regs::RegMap = &regs::IGB;

pub(crate) fn e<T>(r: ivf_vfio::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

pub(crate) fn open(vf: Bdf) -> Result<Device, String> {
    e(Device::open_default(vf))
}

/// Gives queue 0 of `dev` a recognisable configuration, both queues enabled.
pub(crate) fn program(dev: &Device, seed: u32) -> Result<(), String> {
    let bar = e(dev.map_bar(0))?;
    for q in 0..2 {
        bar.write32(
            MAP.rxq(MAP.rx.bal, q) as usize,
            0x0010_0000 + seed * 0x1000 + q * 0x100,
        );
        bar.write32(MAP.rxq(MAP.rx.len, q) as usize, 4096);
        bar.write32(MAP.rxq(MAP.rx.srrctl, q) as usize, 0x0200_0002);
        bar.write32(MAP.rxq(MAP.rx.tail, q) as usize, 10 + seed + q);
        bar.write32(
            MAP.txq(MAP.tx.bal, q) as usize,
            0x0020_0000 + seed * 0x1000 + q * 0x100,
        );
        bar.write32(MAP.txq(MAP.tx.len, q) as usize, 4096);
        bar.write32(MAP.rxq(MAP.rx.dctl, q) as usize, DCTL_ENABLE);
        bar.write32(MAP.txq(MAP.tx.dctl, q) as usize, DCTL_ENABLE);
    }
    bar.write32(MAP.eitr as usize, 0x100 + seed * 4);
    bar.write32(MAP.ivar0 as usize, 0x8180_8081);
    bar.write32(MAP.eims as usize, 0b011);
    Ok(())
}

/// The registers a save must carry, read through the BAR.
fn snapshot(dev: &Device) -> Result<Vec<(u32, u32)>, String> {
    let bar = e(dev.map_bar(0))?;
    let mut v = Vec::new();
    for q in 0..2 {
        for off in [MAP.rx.bal, MAP.rx.len, MAP.rx.srrctl, MAP.rx.tail] {
            v.push((MAP.rxq(off, q), bar.read32(MAP.rxq(off, q) as usize)));
        }
        for off in [MAP.tx.bal, MAP.tx.len] {
            v.push((MAP.txq(off, q), bar.read32(MAP.txq(off, q) as usize)));
        }
    }
    v.push((MAP.eitr, bar.read32(MAP.eitr as usize)));
    v.push((MAP.ivar0, bar.read32(MAP.ivar0 as usize)));
    Ok(v)
}

pub(crate) fn goto(dev: &Device, state: u32) -> Result<Option<File>, String> {
    let f = e(dev.set_mig_state(state))?;
    ensure_eq!(
        e(dev.mig_state())?,
        state,
        "state after moving to {}",
        mig::name(state)
    );
    Ok(f)
}

/// STOP_COPY's bytes of a running device (leaves it in STOP).
pub(crate) fn save(dev: &Device) -> Result<Vec<u8>, String> {
    let mut f = goto(dev, mig::STOP_COPY)?.ok_or("STOP_COPY gave no data fd")?;
    let mut bytes = Vec::new();
    ensure!(
        e(read_data(&mut f, &mut bytes))?,
        "STOP_COPY data has no EOF"
    );
    goto(dev, mig::STOP)?;
    Ok(bytes)
}

fn migration_flags_advertised() -> Outcome {
    let dev = open(host::need_vfs(1)?[0])?;
    let want = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
    ensure_eq!(
        e(dev.migration_flags())?,
        Some(MigrationFlags(want)),
        "migration flags"
    );
    ensure_eq!(e(dev.mig_state())?, mig::RUNNING, "state after open");
    Ok(())
}

fn fsm_every_arc() -> Outcome {
    use mig::*;
    let dev = open(host::need_vfs(1)?[0])?;
    // Walks that together take every arc of the FSM (with P2P and PRE_COPY),
    // each starting and ending in RUNNING; `true` marks a new data fd.
    let walks: &[&[(u32, bool)]] = &[
        &[(RUNNING_P2P, false), (RUNNING, false)],
        &[
            (RUNNING_P2P, false),
            (STOP, false),
            (RUNNING_P2P, false),
            (RUNNING, false),
        ],
        &[
            (RUNNING_P2P, false),
            (STOP, false),
            (STOP_COPY, true),
            (STOP, false),
            (RUNNING_P2P, false),
            (RUNNING, false),
        ],
        &[(RUNNING_P2P, false), (STOP, false), (RESUMING, true)],
        &[(PRE_COPY, true), (RUNNING, false)],
        &[
            (PRE_COPY, true),
            (PRE_COPY_P2P, false),
            (PRE_COPY, false),
            (RUNNING, false),
        ],
        &[
            (PRE_COPY, true),
            (PRE_COPY_P2P, false),
            (RUNNING_P2P, false),
            (RUNNING, false),
        ],
        &[
            (RUNNING_P2P, false),
            (PRE_COPY_P2P, true),
            (STOP_COPY, false),
            (STOP, false),
            (RUNNING, false),
        ],
        // Multi-step targets: the core walks the intermediate states.
        &[(STOP_COPY, true), (RUNNING, false)],
        &[(PRE_COPY_P2P, true), (RUNNING, false)],
    ];
    for (i, walk) in walks.iter().enumerate() {
        let mut from = RUNNING;
        for &(to, fd) in walk.iter() {
            let f = e(dev.set_mig_state(to)).map_err(|err| format!("walk {i}: {err}"))?;
            ensure_eq!(
                f.is_some(),
                fd,
                "walk {i}: data fd on {} -> {}",
                name(from),
                name(to)
            );
            ensure_eq!(e(dev.mig_state())?, to, "walk {i}: state");
            from = to;
        }
        if from == RESUMING {
            // Nothing was written: leaving RESUMING needs a reset.
            e(dev.reset())?;
            ensure_eq!(e(dev.mig_state())?, RUNNING, "walk {i}: state after reset");
        }
    }
    Ok(())
}

fn fsm_invalid_targets_rejected() -> Outcome {
    let dev = open(host::need_vfs(1)?[0])?;
    for bad in [mig::ERROR, 8, 99] {
        match dev.set_mig_state(bad) {
            Err(err) => ensure_eq!(err.errno(), Some(libc::EINVAL), "target {bad}: {err}"),
            Ok(_) => return Err(format!("target {bad} accepted")),
        }
        ensure_eq!(
            e(dev.mig_state())?,
            mig::RUNNING,
            "state after refused target {bad}"
        );
    }
    Ok(())
}

fn stop_copy_stream_decodes() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let dev = open(vf)?;
    program(&dev, 1)?;
    let before = snapshot(&dev)?;
    let size = e(dev.mig_data_size())?;
    let mut f = goto(&dev, mig::STOP_COPY)?.ok_or("no data fd")?;
    let mut bytes = Vec::new();
    ensure!(e(read_data(&mut f, &mut bytes))?, "no EOF in STOP_COPY");
    ensure_eq!(
        bytes.len() as u64,
        size,
        "bytes read vs VFIO_DEVICE_FEATURE_MIG_DATA_SIZE"
    );
    let compat = decode_frame(&bytes[..COMPAT_FRAME_LEN]).map_err(|e| e.to_string())?;
    ensure_eq!(compat.header.family, Family::Igb as u8, "family");
    ensure_eq!(compat.header.device, 0x10ca, "device");
    ensure!(compat.state.is_none(), "the first frame carries no state");
    let frame = decode_frame(&bytes[COMPAT_FRAME_LEN..]).map_err(|e| e.to_string())?;
    let st = frame.state.ok_or("the second frame has no state")?;
    ensure_eq!(st.queue_pairs, 2, "queue pairs");
    ensure_eq!(st.rx[0].bal, 0x0010_1000, "RDBAL0 in the stream");
    ensure_eq!(st.rx[1].tail, 12, "RDT1 in the stream");
    ensure_eq!(
        st.rx[0].dctl & DCTL_ENABLE,
        DCTL_ENABLE,
        "RX0 recorded enabled"
    );
    ensure_eq!(st.irq.eims, 0b011, "EIMS recorded");
    ensure_eq!(st.irq.eitr[0], 0x104, "EITR0 in the stream");
    // The fd ends with the state: further reads stay at EOF...
    let mut more = Vec::new();
    ensure!(
        e(read_data(&mut f, &mut more))? && more.is_empty(),
        "data after EOF"
    );
    // ...and fail once the FSM has left STOP_COPY.
    goto(&dev, mig::STOP)?;
    match read_data(&mut f, &mut more) {
        Err(err) => ensure_eq!(
            err.errno(),
            Some(libc::ENODEV),
            "read after STOP_COPY -> STOP"
        ),
        Ok(_) => return Err("the data fd still reads after leaving STOP_COPY".into()),
    }
    goto(&dev, mig::RUNNING)?;
    ensure_eq!(snapshot(&dev)?, before, "registers after STOP -> RUNNING");
    Ok(())
}

fn precopy_initial_bytes_then_state() -> Outcome {
    let dev = open(host::need_vfs(1)?[0])?;
    let mut f = goto(&dev, mig::PRE_COPY)?.ok_or("no PRE_COPY fd")?;
    let (initial, dirty) = e(precopy_info(&f))?;
    ensure_eq!(
        (initial, dirty),
        (COMPAT_FRAME_LEN as u64, 0),
        "PRE_COPY info before reading"
    );
    let mut bytes = Vec::new();
    ensure!(
        !e(read_data(&mut f, &mut bytes))?,
        "PRE_COPY data ended with EOF, expected ENOMSG"
    );
    ensure_eq!(bytes.len(), COMPAT_FRAME_LEN, "initial bytes");
    let h = stream::parse_header(&bytes).map_err(|e| e.to_string())?;
    ensure_eq!(h.device, 0x10ca, "device in the initial bytes");
    ensure_eq!(e(precopy_info(&f))?, (0, 0), "PRE_COPY info after reading");
    goto(&dev, mig::PRE_COPY_P2P)?;
    goto(&dev, mig::STOP_COPY)?;
    match precopy_info(&f) {
        Err(err) => ensure_eq!(err.errno(), Some(libc::EINVAL), "PRECOPY_INFO in STOP_COPY"),
        Ok(_) => return Err("PRECOPY_INFO answered in STOP_COPY".into()),
    }
    ensure!(e(read_data(&mut f, &mut bytes))?, "no EOF after STOP_COPY");
    let frame = decode_frame(&bytes[COMPAT_FRAME_LEN..]).map_err(|e| e.to_string())?;
    ensure!(frame.state.is_some(), "state frame after the initial bytes");
    goto(&dev, mig::RUNNING)?;
    Ok(())
}

fn quiesce_disables_queues_and_irqs() -> Outcome {
    let dev = open(host::need_vfs(1)?[0])?;
    program(&dev, 2)?;
    let bar = e(dev.map_bar(0))?;
    goto(&dev, mig::RUNNING_P2P)?;
    for q in 0..2 {
        let rx = bar.read32(MAP.rxq(MAP.rx.dctl, q) as usize);
        let tx = bar.read32(MAP.txq(MAP.tx.dctl, q) as usize);
        ensure_eq!(
            (rx & DCTL_ENABLE, tx & DCTL_ENABLE),
            (0, 0),
            "queue {q} enables in RUNNING_P2P"
        );
    }
    // QEMU's igb VF reads EIMS back as last written, whatever EIMC did, so
    // the mask is not observable here; the 82599 model test checks it.
    // A TDT write while stopped sends nothing: the head stays put.
    let head = bar.read32(MAP.tx.head as usize);
    bar.write32(MAP.tx.tail as usize, 5);
    ensure_eq!(
        bar.read32(MAP.tx.head as usize),
        head,
        "TDH after a TDT write while quiesced"
    );
    bar.write32(MAP.tx.tail as usize, head);
    goto(&dev, mig::RUNNING)?;
    for q in 0..2 {
        let rx = bar.read32(MAP.rxq(MAP.rx.dctl, q) as usize);
        ensure_eq!(rx & DCTL_ENABLE, DCTL_ENABLE, "RX{q} re-enabled");
    }
    ensure_eq!(
        bar.read32(MAP.eims as usize) & MAP.vector_mask(),
        0b011,
        "EIMS restored"
    );
    Ok(())
}

pub(crate) fn load(dev: &Device, bytes: &[u8]) -> Result<(), String> {
    let mut f = goto(dev, mig::RESUMING)?.ok_or("RESUMING gave no data fd")?;
    e(write_data(&mut f, bytes))?;
    goto(dev, mig::STOP)?;
    Ok(())
}

fn resume_into_another_vf() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let src = open(vfs[0])?;
    let dst = open(vfs[1])?;
    program(&src, 3)?;
    let want = snapshot(&src)?;
    let bytes = save(&src)?;
    load(&dst, &bytes)?;
    goto(&dst, mig::RUNNING)?;
    ensure_eq!(snapshot(&dst)?, want, "destination registers after resume");
    let bar = e(dst.map_bar(0))?;
    for q in 0..2 {
        ensure_eq!(
            bar.read32(MAP.rxq(MAP.rx.dctl, q) as usize) & DCTL_ENABLE,
            DCTL_ENABLE,
            "RX{q} enabled on the destination"
        );
        ensure_eq!(
            bar.read32(MAP.txq(MAP.tx.dctl, q) as usize) & DCTL_ENABLE,
            DCTL_ENABLE,
            "TX{q} enabled on the destination"
        );
    }
    ensure_eq!(
        bar.read32(MAP.eims as usize) & MAP.vector_mask(),
        0b011,
        "EIMS on the destination"
    );
    goto(&src, mig::RUNNING)?;
    Ok(())
}

/// A stream and the errno the destination must refuse it with.
struct BadStream {
    what: String,
    bytes: Vec<u8>,
    errno: i32,
}

fn bad_streams(good: &[u8]) -> Vec<BadStream> {
    let state_frame = &good[COMPAT_FRAME_LEN..];
    let frame = decode_frame(state_frame).expect("own stream");
    let st = frame.state.expect("state");
    let mut out = Vec::new();
    // Truncated at every section boundary and inside the header.
    let mut at = stream::HEADER_LEN;
    let mut cuts = vec![8, stream::HEADER_LEN - 1, stream::HEADER_LEN];
    while at < state_frame.len() {
        let len = u32::from_le_bytes(state_frame[at + 4..at + 8].try_into().unwrap()) as usize;
        at += stream::SECTION_HEADER_LEN + len;
        cuts.push(at - 1);
        if at < state_frame.len() {
            cuts.push(at);
        }
    }
    for cut in cuts {
        out.push(BadStream {
            what: format!("truncated at byte {cut} of {}", state_frame.len()),
            bytes: state_frame[..cut].to_vec(),
            errno: libc::EMSGSIZE,
        });
    }
    let mut flip = state_frame.to_vec();
    flip[stream::HEADER_LEN + 20] ^= 0x10;
    out.push(BadStream {
        what: "bit flip in a section".into(),
        bytes: flip,
        errno: libc::EBADMSG,
    });
    let mut magic = state_frame.to_vec();
    magic[0] = b'J';
    out.push(BadStream {
        what: "wrong magic".into(),
        bytes: magic,
        errno: libc::EINVAL,
    });
    let mut future = state_frame.to_vec();
    future[8] = 2;
    stream::reseal(&mut future);
    out.push(BadStream {
        what: "future major 2".into(),
        bytes: future,
        errno: libc::EPROTONOSUPPORT,
    });
    let h = header_for(Family::Igb, MAP, 0x8086, 0x10ca, frame.header.revision);
    let unknown = build(
        h,
        &[
            (
                TAG_DEVICE,
                SECTION_MANDATORY,
                vec![2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0],
            ),
            (0x7777, SECTION_MANDATORY, b"from the future".to_vec()),
        ],
    );
    out.push(BadStream {
        what: "unknown mandatory section".into(),
        bytes: unknown,
        errno: libc::ENOPROTOOPT,
    });
    let mut other = vec![0u8; state::MAX_FRAME_LEN];
    let hx = header_for(Family::Ixgbe, &regs::IXGBE, 0x8086, 0x10ed, 1);
    let n = write_state_frame(
        &mut other,
        hx,
        &regs::IXGBE,
        &Default::default(),
        &Default::default(),
    )
    .unwrap();
    out.push(BadStream {
        what: "ixgbe-family stream".into(),
        bytes: other[..n].to_vec(),
        errno: libc::ENODEV,
    });
    let mut many = vec![0u8; state::MAX_FRAME_LEN];
    let hq = Header {
        queue_pairs: MAX_QUEUES as u16,
        ..h
    };
    let n = write_state_frame(&mut many, hq, MAP, &st, &frame.pf).unwrap();
    out.push(BadStream {
        what: "8 queue pairs for a 2-queue VF".into(),
        bytes: many[..n].to_vec(),
        errno: libc::ERANGE,
    });
    out.push(BadStream {
        what: "oversized (1 MiB)".into(),
        bytes: vec![0x49; 1 << 20],
        errno: libc::EFBIG,
    });
    out.push(BadStream {
        what: "compatibility frame only".into(),
        bytes: good[..COMPAT_FRAME_LEN].to_vec(),
        errno: libc::ENODATA,
    });
    out.extend(bad_grammar(good));
    out
}

/// Streams that are well formed frame by frame but not what a source
/// writes: frames out of the grammar, sections twice or missing, counts
/// that disagree with DEVICE, another shape or revision.
fn bad_grammar(good: &[u8]) -> Vec<BadStream> {
    let (compat, state_frame) = good.split_at(COMPAT_FRAME_LEN);
    let header = stream::parse_header(state_frame).expect("own stream");
    let secs = sections(state_frame);
    let bad = |what: &str, bytes: Vec<u8>, errno: i32| BadStream {
        what: what.into(),
        bytes,
        errno,
    };
    let mut twice = secs.clone();
    let q = twice.iter().position(|s| s.0 == TAG_QUEUES).unwrap();
    twice.insert(q + 1, twice[q].clone());
    let mut no_mbx = secs.clone();
    no_mbx.retain(|s| s.0 != TAG_PF_MBX);
    let mut short = secs.clone();
    // QUEUES with its first queue pair only (count 1, 15 words).
    let q1 = &mut short[q].2;
    q1[0] = 1;
    q1.truncate(4 + state::QUEUE_WORDS * 4);
    let words = |w: [u32; 3]| w.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let shape = build(header, &[(TAG_DEVICE, SECTION_MANDATORY, words([2, 3, 2]))]);
    let mut rev = good.to_vec();
    for at in [15, COMPAT_FRAME_LEN + 15] {
        rev[at] = rev[at].wrapping_add(1);
    }
    stream::reseal(&mut rev[..COMPAT_FRAME_LEN]);
    stream::reseal(&mut rev[COMPAT_FRAME_LEN..]);
    vec![
        bad("state frame first", state_frame.to_vec(), libc::EILSEQ),
        bad(
            "two compatibility frames",
            [compat, compat].concat(),
            libc::EILSEQ,
        ),
        bad(
            "a frame after the state frame",
            [good, compat].concat(),
            libc::EILSEQ,
        ),
        bad(
            "QUEUES section twice",
            [compat, &build(header, &twice)].concat(),
            libc::EPROTO,
        ),
        bad(
            "state frame without PF_MBX",
            [compat, &build(header, &no_mbx)].concat(),
            libc::EPROTO,
        ),
        bad(
            "QUEUES with fewer queue pairs than DEVICE",
            [compat, &build(header, &short)].concat(),
            libc::EPROTO,
        ),
        bad(
            "DEVICE shape of another VF (2 IVARs)",
            [&shape[..], state_frame].concat(),
            libc::ENODEV,
        ),
        bad("another PCI revision", rev, libc::ENODEV),
    ]
}

fn bad_streams_rejected() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let src = open(vfs[0])?;
    program(&src, 4)?;
    let good = save(&src)?;
    goto(&src, mig::RUNNING)?;
    let dst = open(vfs[1])?;
    let mut refused = 0;
    for bad in bad_streams(&good) {
        let mut f = goto(&dst, mig::RESUMING)?.ok_or("no RESUMING fd")?;
        // Refused at write() when the bytes show it, else at RESUMING -> STOP.
        let got = match write_data(&mut f, &bad.bytes) {
            Err(err) => err.errno(),
            Ok(()) => match dst.set_mig_state(mig::STOP) {
                Err(err) => err.errno(),
                Ok(_) => return Err(format!("{}: accepted", bad.what)),
            },
        };
        ensure_eq!(got, Some(bad.errno), "{}: errno", bad.what);
        // Nothing was loaded: a reset gives a working VF again.
        e(dst.reset())?;
        ensure_eq!(
            e(dst.mig_state())?,
            mig::RUNNING,
            "{}: state after reset",
            bad.what
        );
        ensure_eq!(
            e(dst.config_read16(0))?,
            0x8086,
            "{}: config after reset",
            bad.what
        );
        refused += 1;
    }
    // And the good stream still loads after all that.
    load(&dst, &good)?;
    goto(&dst, mig::RUNNING)?;
    println!("# bad_streams_rejected: {refused} bad streams refused with their errno");
    Ok(())
}

fn reset_during_migration_returns_to_running() -> Outcome {
    let dev = open(host::need_vfs(1)?[0])?;
    let mut f = goto(&dev, mig::PRE_COPY)?.ok_or("no PRE_COPY fd")?;
    e(dev.reset())?;
    ensure_eq!(
        e(dev.mig_state())?,
        mig::RUNNING,
        "state after a reset in PRE_COPY"
    );
    let mut b = Vec::new();
    match read_data(&mut f, &mut b) {
        Err(err) => ensure_eq!(err.errno(), Some(libc::ENODEV), "read after reset"),
        Ok(_) => return Err("the data fd survived the reset".into()),
    }
    // The FSM works again from RUNNING.
    save(&dev)?;
    goto(&dev, mig::RUNNING)?;
    Ok(())
}

/// Runs the `vfmig` built beside this binary.
fn vfmig(args: &[&str]) -> (i32, String) {
    let exe = std::env::current_exe().expect("own path");
    let vfmig = exe.with_file_name("vfmig");
    match std::process::Command::new(&vfmig).args(args).output() {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(err) => (-1, format!("{}: {err}", vfmig.display())),
    }
}

fn vfmig_save_inspect_check_load() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let (a, b) = (vfs[0].to_string(), vfs[1].to_string());
    {
        let dev = open(vfs[0])?;
        program(&dev, 5)?;
        // vfmig cannot take a VF someone holds.
        let (code, out) = vfmig(&["save", &a, "-o", "/tmp/vf0.state"]);
        ensure_eq!(code, 5, "save of a busy VF: {out}");
        ensure!(
            out.contains("in use by pid"),
            "the message names the holder: {out}"
        );
    }
    let (code, out) = vfmig(&["save", &a, "-o", "/tmp/vf0.state"]);
    ensure_eq!(code, 0, "save: {out}");
    let (code, out) = vfmig(&["inspect", "/tmp/vf0.state", "--json"]);
    ensure_eq!(code, 0, "inspect: {out}");
    ensure!(
        out.contains("\"QUEUES\"") && out.contains("\"IRQ\"") && out.contains("\"PF_MBX\""),
        "inspect lacks sections: {out}"
    );
    let (code, out) = vfmig(&["check", "/tmp/vf0.state", &b]);
    ensure_eq!(code, 0, "check: {out}");
    let (code, out) = vfmig(&["load", &b, "-i", "/tmp/vf0.state"]);
    ensure_eq!(code, 0, "load: {out}");
    let mut bytes = std::fs::read("/tmp/vf0.state").map_err(|e| e.to_string())?;
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write("/tmp/bad.state", &bytes).map_err(|e| e.to_string())?;
    let (code, out) = vfmig(&["load", &b, "-i", "/tmp/bad.state"]);
    ensure_eq!(code, 6, "load of a corrupt file: {out}");
    ensure!(out.contains("crc32c"), "the reason names the check: {out}");
    let (code, out) = vfmig(&["save", "0000:7f:00.0", "-o", "/tmp/x.state"]);
    ensure_eq!(code, 3, "save of a missing device: {out}");
    ensure!(
        !std::path::Path::new("/tmp/x.state").exists(),
        "a failed save left a file"
    );
    Ok(())
}

/// A stream carries nothing of the host it was saved on: no PCI address of
/// the VF or its PF, no VF index or pool number, no MAC of the PF. Decoded
/// with `vfmig inspect --json` (every field by name) and searched, and the
/// raw bytes searched for the PF's MAC too. (A guest's own MAC, which its
/// driver set through the mailbox, is the guest's and travels.)
fn stream_is_host_independent() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let (a, b) = (vfs[0].to_string(), vfs[1].to_string());
    let pf = std::env::var("IVF_PF").map_err(|e| e.to_string())?;
    let pf_if = std::env::var("IVF_PF_IF").map_err(|e| e.to_string())?;
    let pf_mac = std::fs::read_to_string(format!("/sys/class/net/{pf_if}/address"))
        .map_err(|e| e.to_string())?
        .trim()
        .to_string();
    let (code, out) = vfmig(&["save", &a, "-o", "/tmp/host.state"]);
    ensure_eq!(code, 0, "save: {out}");
    let (code, json) = vfmig(&["inspect", "/tmp/host.state", "--json"]);
    ensure_eq!(code, 0, "inspect: {json}");
    let text = json.to_lowercase();
    let short = |bdf: &str| {
        bdf.split_once(':')
            .map(|x| x.1.to_string())
            .unwrap_or_default()
    };
    for needle in [
        a.clone(),
        short(&a),
        b.clone(),
        pf.clone(),
        short(&pf),
        pf_mac.clone(),
    ] {
        ensure!(
            !text.contains(&needle.to_lowercase()),
            "the stream names {needle} (this host's): {json}"
        );
    }
    // ("pf" is the PF-channel section: the guest's own requests, not the host's.)
    for field in [
        "\"bdf\"",
        "\"vf_index\"",
        "\"vf\":",
        "\"pool\"",
        "\"bus\"",
        "\"domain\"",
    ] {
        ensure!(
            !text.contains(field),
            "the stream has a host field {field}: {json}"
        );
    }
    let bytes = std::fs::read("/tmp/host.state").map_err(|e| e.to_string())?;
    let mac: Vec<u8> = pf_mac
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    ensure!(
        mac.len() == 6 && !bytes.windows(6).any(|w| w == mac.as_slice()),
        "the stream's bytes hold the PF's MAC {pf_mac}"
    );
    // And it loads on a VF with another index.
    let (code, out) = vfmig(&["load", &b, "-i", "/tmp/host.state"]);
    ensure_eq!(code, 0, "load on {b}: {out}");
    Ok(())
}

/// Starts `vfmig save VF -o FILE` (the `vfmig` beside this binary), its
/// output captured.
fn spawn_vfmig_save(vf: &str, file: &str) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let vfmig = exe.with_file_name("vfmig");
    Command::new(&vfmig)
        .args(["save", vf, "-o", file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", vfmig.display()))
}

/// Two `vfmig save` of one VF started at once, round after round, the
/// second 0 to 1.75 ms after the first to sweep the interleavings (both
/// past the holder check before either opens; one between its cdev open
/// and its bind; one bound). Whichever loses exits 5 naming the other
/// ("pid N (vfmig)", or "another process" if it has closed the VF by
/// then), never 1 with the kernel's EINVAL (VFIO_DEVICE_BIND_IOMMUFD) or
/// EBUSY, and writes no file; at least one wins and saves.
fn vfmig_busy_race() -> Outcome {
    // Two rounds at each of the 8 start offsets (2 s a round under TCG).
    const ROUNDS: u32 = 16;
    let vf = host::need_vfs(1)?[0].to_string();
    let files = ["/tmp/race-0.state", "/tmp/race-1.state"];
    let (mut lost, mut refused_by_kernel, mut gone) = (0, 0, 0);
    for round in 0..ROUNDS {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
        let first = spawn_vfmig_save(&vf, files[0])?;
        std::thread::sleep(Duration::from_micros(u64::from(round % 8) * 250));
        let second = spawn_vfmig_save(&vf, files[1]);
        let pids = [first.id(), second.as_ref().map_or(0, Child::id)];
        // Both are waited for before any verdict.
        let outputs = [first.wait_with_output(), second?.wait_with_output()];
        let mut winners = 0;
        for (i, output) in outputs.into_iter().enumerate() {
            let o = output.map_err(|e| format!("round {round}: waiting for vfmig {i}: {e}"))?;
            let code = o.status.code().unwrap_or(-1);
            let err = String::from_utf8_lossy(&o.stderr);
            let text = format!("{}{err}", String::from_utf8_lossy(&o.stdout));
            let wrote = Path::new(files[i]).exists();
            match code {
                0 => {
                    winners += 1;
                    ensure!(
                        wrote,
                        "round {round}: save {i} succeeded, no {}: {text}",
                        files[i]
                    );
                }
                5 => {
                    lost += 1;
                    ensure!(!wrote, "round {round}: the busy save {i} left {}", files[i]);
                    let other = format!("vfmig: {vf} is in use by pid {} (vfmig)", pids[1 - i]);
                    let nobody = format!("vfmig: {vf} is in use by another process");
                    ensure!(
                        err.starts_with(&other) || err.starts_with(&nobody),
                        "round {round}: save {i} exited 5 without naming the other save (pid {}): {text}",
                        pids[1 - i]
                    );
                    if err.contains("the kernel refused the open") {
                        refused_by_kernel += 1;
                    }
                    if err.starts_with(&nobody) {
                        gone += 1;
                    }
                }
                _ => {
                    return Err(format!(
                        "round {round}: save {i} exited {code}, not 0 or 5 (busy): {text}"
                    ))
                }
            }
        }
        ensure!(
            winners >= 1,
            "round {round}: both saves lost, neither holds the VF"
        );
    }
    println!(
        "# vfmig_busy_race: {lost} of {ROUNDS} rounds had a loser: {refused_by_kernel} refused by the kernel after the holder check ({gone} found the winner gone), {} at the holder check",
        lost - refused_by_kernel
    );
    ensure!(
        lost > 0,
        "the two saves never overlapped in {ROUNDS} rounds: nothing was tested"
    );
    Ok(())
}

fn close_during_transfer_ends_the_fd() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let (mut save_fd, mut resume_fd) = {
        let a = open(vf)?;
        let f = goto(&a, mig::PRE_COPY)?.ok_or("no PRE_COPY fd")?;
        drop(a);
        let b = open(vf)?;
        ensure_eq!(e(b.mig_state())?, mig::RUNNING, "state after reopen");
        let r = goto(&b, mig::RESUMING)?.ok_or("no RESUMING fd")?;
        drop(b);
        (f, r)
    };
    // close_device ended both transfers: the fds outlive the device, inert.
    let mut buf = Vec::new();
    match read_data(&mut save_fd, &mut buf) {
        Err(err) => ensure_eq!(err.errno(), Some(libc::ENODEV), "read after close_device"),
        Ok(_) => return Err("the save fd still reads after close_device".into()),
    }
    match write_data(&mut resume_fd, b"IVFSTATE") {
        Err(err) => ensure_eq!(err.errno(), Some(libc::ENODEV), "write after close_device"),
        Ok(()) => return Err("the resume fd still writes after close_device".into()),
    }
    Ok(())
}

fn precopy_header_refused_before_stop() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let src = open(vfs[0])?;
    let dst = open(vfs[1])?;
    let mut f = goto(&src, mig::PRE_COPY)?.ok_or("no PRE_COPY fd")?;
    let mut initial = Vec::new();
    read_data(&mut f, &mut initial).map_err(|e| e.to_string())?;
    // A destination from the future: our initial bytes with major 2.
    initial[8] = 2;
    stream::reseal(&mut initial);
    let mut r = goto(&dst, mig::RESUMING)?.ok_or("no RESUMING fd")?;
    match write_data(&mut r, &initial[..stream::HEADER_LEN]) {
        Err(err) => ensure_eq!(
            err.errno(),
            Some(libc::EPROTONOSUPPORT),
            "header of a future major"
        ),
        Ok(()) => return Err("the destination took a future major's header".into()),
    }
    // The source never stopped: it is still in PRE_COPY, running.
    ensure_eq!(e(src.mig_state())?, mig::PRE_COPY, "source state");
    goto(&src, mig::RUNNING)?;
    e(dst.reset())?;
    Ok(())
}

fn error_state_and_recovery_by_reset() -> Outcome {
    let vf = host::need_vfs(1)?[0];
    let module = host::module_path();
    host::unload()?;
    let (ok, out) = host::sh(
        "insmod",
        &[module.to_str().unwrap(), "fault_inject_quiesce=1"],
    );
    ensure!(ok, "insmod with fault injection: {out}");
    let result = (|| {
        host::bind_ours(vf)?;
        let dev = open(vf)?;
        match dev.set_mig_state(mig::STOP) {
            Err(err) => ensure_eq!(err.errno(), Some(libc::ETIMEDOUT), "failed quiesce"),
            Ok(_) => return Err("quiesce succeeded with the fault injected".into()),
        }
        ensure_eq!(
            e(dev.mig_state())?,
            mig::ERROR,
            "state after a failed quiesce"
        );
        match dev.set_mig_state(mig::RUNNING) {
            Err(err) => ensure_eq!(
                err.errno(),
                Some(libc::EINVAL),
                "leaving ERROR without reset"
            ),
            Ok(_) => return Err("left ERROR without a reset".into()),
        }
        e(dev.reset())?;
        ensure_eq!(e(dev.mig_state())?, mig::RUNNING, "state after reset");
        ensure_eq!(e(dev.config_read16(0))?, 0x8086, "device after recovery");
        Ok(())
    })();
    host::unload()?;
    host::load_and_bind_all()?;
    result
}

/// The seed [`program`] is given before a stream fixture is saved.
const FIXTURE_SEED: u32 = 7;

/// The committed streams, one saved on each architecture the suite runs on
/// (by `ivf-selftests --save-stream FILE`, see `Documentation/testing.rst`),
/// by the same module from a VF [`program`]med with [`FIXTURE_SEED`].
const ARCH_STREAMS: [(&str, &[u8]); 2] = [
    ("x86_64", include_bytes!("../streams/igb-x86_64.state")),
    ("arm64", include_bytes!("../streams/igb-arm64.state")),
];

/// Programs the first VF with [`FIXTURE_SEED`] and saves its stream to
/// `path` (the fixture writer behind `ivf-selftests --save-stream`).
pub fn save_stream_fixture(path: &str) -> Result<(), String> {
    let vfs = host::need_vfs(1)?;
    let dev = open(vfs[0])?;
    program(&dev, FIXTURE_SEED)?;
    let bytes = save(&dev)?;
    std::fs::write(path, &bytes).map_err(|e| format!("{path}: {e}"))?;
    goto(&dev, mig::RUNNING)?;
    Ok(())
}

/// A stream saved on the other architecture loads here, and on this one
/// too: the format is little-endian by definition, whatever the host's
/// byte order and word size. Each committed stream goes into a VF, which
/// then holds the registers the same programming gives a VF here.
fn stream_saved_on_each_arch_loads() -> Outcome {
    let vfs = host::need_vfs(2)?;
    let want = {
        let src = open(vfs[0])?;
        program(&src, FIXTURE_SEED)?;
        snapshot(&src)?
    };
    let dst = open(vfs[1])?;
    for (arch, bytes) in ARCH_STREAMS {
        ensure!(!bytes.is_empty(), "no stream saved on {arch} is committed");
        load(&dst, bytes).map_err(|err| format!("the stream saved on {arch}: {err}"))?;
        goto(&dst, mig::RUNNING)?;
        ensure_eq!(
            snapshot(&dst)?,
            want,
            "registers after loading the stream saved on {arch} (this is {})",
            std::env::consts::ARCH
        );
        e(dst.reset())?;
    }
    Ok(())
}

#[cfg(test)]
mod arch_streams {
    use super::*;
    use ivf_common::state::{next_frame, FrameSequence};

    /// Both committed streams decode, frame by frame, to the same device
    /// state: nothing in them depends on the architecture that wrote them.
    #[test]
    fn streams_of_both_arches_decode_alike() {
        let mut decoded = Vec::new();
        for (arch, bytes) in ARCH_STREAMS {
            assert!(!bytes.is_empty(), "no stream saved on {arch}");
            let (compat, n) = next_frame(bytes).unwrap_or_else(|e| panic!("{arch}: {e:?}"));
            let (state, m) = next_frame(&bytes[n..]).unwrap_or_else(|e| panic!("{arch}: {e:?}"));
            assert_eq!(n + m, bytes.len(), "{arch}: bytes after the state frame");
            let mut seq = FrameSequence::new(compat.shape);
            seq.accept(&compat).unwrap();
            seq.accept(&state).unwrap();
            assert!(seq.complete(), "{arch}: the grammar wants more");
            let regs = state.state.expect("a state frame");
            assert_eq!(regs.queue_pairs, 2, "{arch}: queue pairs");
            decoded.push((arch, compat.header, compat.shape, regs, state.pf));
        }
        let (a, b) = (&decoded[0], &decoded[1]);
        assert_eq!(a.1, b.1, "headers of {} and {}", a.0, b.0);
        assert_eq!(a.2, b.2, "DEVICE of {} and {}", a.0, b.0);
        assert_eq!(a.3, b.3, "registers of {} and {}", a.0, b.0);
        assert_eq!(a.4, b.4, "PF state of {} and {}", a.0, b.0);
    }
}
