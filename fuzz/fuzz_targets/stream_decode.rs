// SPDX-License-Identifier: GPL-2.0

//! `stream_decode`: every decoder that takes migration-stream bytes from
//! user space, on the fuzzer's bytes, twice per input.
//!
//! Raw: the bytes as they stand go through `stream::parse_header`,
//! `stream::parse` (and its section iterator), `state::decode_frame`,
//! `state::next_frame` over a run of frames, the resume file's checks
//! (`state::FrameSequence::feed`, as rust/lm.rs's `check_frames`, fed in
//! chunks of several sizes), and the PF_MBX
//! / PF_ADMIN section decoders. None may panic; what
//! they accept must be self-consistent (length, CRC, section layout), the
//! chunked check must agree with the one-shot check, and a decoded PF
//! section must re-encode to the same value.
//!
//! A decoded mailbox log (PF_MBX alone, of either family, or in a frame, of
//! the header's) is replayed at a model of the Linux PF drivers' mailbox
//! responder (rust/common/tests/linux_pf/): no request may carry ACK, NACK
//! or CTS in word 0, none may time out, and the PF accepts every one (but an
//! ixgbe xcast mode the logged API does not offer, which it refuses).
//!
//! Structured: the same bytes, read by `arbitrary`, give a device state,
//! a mailbox log and admin settings; the crate's own encoder writes the
//! compatibility and state frames. Decoding must give back exactly that
//! state, or refuse it; what a source writes (every queue pair, a mailbox
//! log within the ranges its PF accepts) it must accept, and a
//! destination's resume file too. Then one field is mutated: unsealed, the CRC must catch it;
//! resealed with `stream::reseal`, decoding must return Ok or Err, never
//! panic.

#![no_main]

use std::fmt::Write as _;

use arbitrary::{Arbitrary, Unstructured};
use ivf_common::admin::{AdminConfig, ADMIN_LEN};
use ivf_common::hal::{DeviceState, IrqState, RxQueue, TxQueue, MAX_QUEUES};
use ivf_common::ids::{Family, PCI_VENDOR_ID_INTEL};
use ivf_common::mbx::{self, msg, replay_log, MbxError, MbxLog, MAX_MACVLANS, MAX_MC};
use ivf_common::regs::{regmap, RegMap};
use ivf_common::state::{
    decode_frame, header_for, next_frame, state_frame_len, write_compat_frame, write_state_frame,
    DeviceShape, Frame, FrameSequence, PfState, COMPAT_FRAME_LEN, MAX_FRAME_LEN,
};
use ivf_common::stream::{
    self, parse, parse_header, DeviceCaps, Header, StreamError, HEADER_LEN, MAJOR, MAX_STREAM_LEN,
    SECTION_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

#[path = "../../rust/common/tests/linux_pf/mod.rs"]
mod linux_pf;
#[path = "../../rust/common/tests/support/mod.rs"]
mod support;
use linux_pf::LinuxPf;

/// rust/lm.rs: a resume file takes at most four frames' worth of bytes.
const MAX_RESUME_LEN: usize = 4 * MAX_FRAME_LEN;

/// Revision of the seeds' VFs.
const REVISION: u8 = 1;

/// What a destination VF of `family` accepts (as rust/lm.rs's `caps`).
fn caps_for(family: Family, revision: u8) -> DeviceCaps {
    let map = regmap(family);
    DeviceCaps {
        family,
        vendor: PCI_VENDOR_ID_INTEL,
        device: device_id(family),
        revision,
        max_queue_pairs: map.max_queue_pairs as u16,
        features: 0,
    }
}

fn device_id(family: Family) -> u16 {
    match family {
        Family::Ixgbe => 0x10ed,
        Family::Igb => 0x10ca,
    }
}

/// The resume file's state: bytes written so far, bytes checked, first
/// error, and where the frames are in the grammar.
struct ResumeFile {
    buf: Vec<u8>,
    pos: usize,
    error: Option<StreamError>,
    caps: DeviceCaps,
    seq: FrameSequence,
}

impl ResumeFile {
    fn new(caps: DeviceCaps) -> Self {
        ResumeFile {
            buf: Vec::new(),
            pos: 0,
            error: None,
            caps,
            seq: FrameSequence::new(DeviceShape::of(regmap(caps.family))),
        }
    }

    /// `ivf_mig_write`: append, then check the frames completed.
    fn write(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.buf.len() + data.len() > MAX_RESUME_LEN {
            self.error = Some(StreamError::TooLarge {
                len: self.buf.len() + data.len(),
                max: MAX_RESUME_LEN,
            });
            return;
        }
        self.buf.extend_from_slice(data);
        if let Err(e) = self.check_frames() {
            self.error = Some(e);
        }
    }

    /// `check_frames` in rust/lm.rs: the shared `FrameSequence::feed`.
    fn check_frames(&mut self) -> Result<(), StreamError> {
        self.seq.feed(&self.buf, &mut self.pos, &self.caps)
    }
}

/// Formats and errno of a rejection: neither may panic, the errno is a
/// positive Linux errno.
fn check_error(e: &StreamError) {
    let mut s = String::new();
    write!(s, "{e}").unwrap();
    assert!(!s.is_empty());
    assert!((1..4096).contains(&e.errno()), "{e:?}");
}

/// What `parse` accepted must be what it claims to be.
fn check_parsed(b: &[u8], h: &Header, sections: stream::Sections<'_>) {
    assert_eq!(h.major, MAJOR);
    assert_eq!(h.total_len as usize, b.len());
    assert!(b.len() <= MAX_STREAM_LEN);
    assert!(h.header_len as usize >= HEADER_LEN);
    // The stored CRC is the stream's: resealing changes nothing.
    let mut again = b.to_vec();
    stream::reseal(&mut again);
    assert_eq!(again, b, "an accepted stream's CRC is its own");
    let mut n = 0usize;
    let mut bytes = h.header_len as usize;
    for s in sections {
        n += 1;
        bytes += SECTION_HEADER_LEN + s.payload.len();
        assert_eq!(s.mandatory(), s.flags & stream::SECTION_MANDATORY != 0);
    }
    assert_eq!(n, h.section_count as usize);
    assert_eq!(bytes, b.len(), "sections tile the body exactly");
}

/// The oracle of a decoded mailbox log: replayed at a Linux PF of
/// `family`, no request carries the PF's reply bits, none times out, and
/// the PF accepts each one and ends with the log; but an ixgbe xcast mode
/// the logged API does not offer, which the decoder does not judge and the
/// PF refuses (an error, not a hang).
fn check_replay(family: Family, log: &MbxLog) {
    let mut pf = LinuxPf::new(family);
    let r = replay_log(&mut pf, regmap(family), family, log);
    for w in &pf.requests {
        assert_eq!(
            w & (msg::ACK | msg::NACK | msg::CTS),
            0,
            "{family:?}: request word 0 {w:#010x} carries reply bits ({log:?})"
        );
    }
    match r {
        Ok((accepted, sent)) => {
            if log.flags & 1 != 0 {
                assert_eq!(accepted, MbxLog { ignored: 0, ..*log }, "{family:?}");
            } else {
                assert_eq!(sent, 0, "no RESET, nothing replayed");
            }
        }
        Err(MbxError::Timeout { what, kind }) => {
            panic!("{family:?}: the PF did not {what} message {kind:#x} ({log:?})")
        }
        Err(MbxError::Refused { kind, reply }) => assert!(
            family == Family::Ixgbe && kind == msg::UPDATE_XCAST_MODE,
            "{family:?}: the PF refused {kind:#x} (reply {reply:#010x}) of {log:?}"
        ),
    }
}

/// A decoded PF section re-encodes to the same value (bytes may differ
/// only in reserved fields); a decoded mailbox log replays cleanly.
fn check_pf_decoders(b: &[u8]) {
    for family in Family::ALL {
        match MbxLog::decode(family, b) {
            Ok(log) => {
                assert!(log.mc_count as usize <= MAX_MC);
                let mut enc = [0u8; mbx::ENCODED_LEN];
                log.encode(&mut enc);
                assert_eq!(&enc[..], b, "the layout has no slack");
                assert_eq!(MbxLog::decode(family, &enc), Ok(log));
                check_replay(family, &log);
            }
            Err(e) => {
                check_error(&e);
                assert!(matches!(e, StreamError::Malformed { .. }), "{e:?}");
            }
        }
    }
    if let Some(a) = AdminConfig::decode(b) {
        assert!(a.vlan <= 4095 && a.qos <= 7 && a.link_state <= 2);
        let mut enc = [0u8; ADMIN_LEN];
        a.encode(&mut enc);
        assert_eq!(AdminConfig::decode(&enc), Some(a));
    }
}

fn raw(data: &[u8]) {
    match parse_header(data) {
        Ok(h) => {
            assert_eq!(h.major, MAJOR);
            assert!(h.header_len as usize >= HEADER_LEN);
            assert!(h.total_len as usize <= MAX_STREAM_LEN);
            assert!(h.total_len >= u32::from(h.header_len));
        }
        Err(e) => check_error(&e),
    }
    let parsed = parse(data);
    match &parsed {
        Ok((h, sections)) => check_parsed(data, h, sections.clone()),
        Err(e) => check_error(e),
    }
    match decode_frame(data) {
        Ok(f) => {
            let (h, _) = parsed.expect("a decoded frame parses");
            assert_eq!(f.header, h);
            if let Some(s) = &f.state {
                assert!(s.queue_pairs as usize <= MAX_QUEUES);
            }
            if let Some(log) = &f.pf.mbx {
                let family = Family::from_code(h.family).expect("a log is judged by its family");
                check_replay(family, log);
            }
        }
        Err(e) => {
            check_error(&e);
            // Stream-level failures are parse's; decode adds only
            // section-level ones.
            match parsed {
                Err(p) => assert_eq!(p, e),
                Ok(_) => assert!(
                    matches!(
                        e,
                        StreamError::Malformed { .. } | StreamError::UnknownMandatorySection { .. }
                    ),
                    "{e:?} from a stream that parses"
                ),
            }
        }
    }
    // The data fd's grammar: a run of frames, each announcing its length.
    let mut at = 0;
    while at < data.len() {
        match next_frame(&data[at..]) {
            Ok((_, len)) => {
                assert!(len >= HEADER_LEN, "a frame always advances");
                at += len;
            }
            Err(e) => {
                check_error(&e);
                break;
            }
        }
    }
    // The resume file: the outcome may not depend on how writes cut the
    // bytes (beyond the file's limit a one-shot write is refused whole).
    let families: &[Family] = if data.len() <= MAX_RESUME_LEN {
        &Family::ALL
    } else {
        &[]
    };
    for &family in families {
        let caps = caps_for(family, REVISION);
        let mut whole = ResumeFile::new(caps);
        whole.write(data);
        for chunk in [1, 7, HEADER_LEN, 333] {
            let mut f = ResumeFile::new(caps);
            for c in data.chunks(chunk) {
                f.write(c);
            }
            assert_eq!(f.error, whole.error, "chunks of {chunk}");
            if f.error.is_none() {
                assert_eq!((f.pos, f.seq), (whole.pos, whole.seq), "chunks of {chunk}");
            }
        }
    }
    // PF sections straight from the bytes, at their exact lengths.
    check_pf_decoders(data);
    if data.len() > mbx::ENCODED_LEN {
        check_pf_decoders(&data[..mbx::ENCODED_LEN]);
    }
    if data.len() > ADMIN_LEN {
        check_pf_decoders(&data[..ADMIN_LEN]);
    }
}

/// A mailbox log as the encoder may meet it: a source's (within the
/// ranges its PF accepts) or, `forged`, any value of each field's type.
#[derive(Arbitrary, Debug)]
struct ArbLog {
    forged: bool,
    flags: u8,
    mac: Option<[u8; 6]>,
    api: Option<u32>,
    max_frame: Option<u32>,
    xcast: Option<u32>,
    mc: [u16; MAX_MC],
    mc_count: u8,
    vlans: [u64; 8],
    vlan_at: u8,
    macvlans: [Option<[u8; 6]>; MAX_MACVLANS],
    ignored: u32,
}

/// `m` made a unicast address (what both PFs require).
fn unicast(mut m: [u8; 6]) -> [u8; 6] {
    m[0] &= !1;
    if m == [0; 6] {
        m[5] = 1;
    }
    m
}

impl ArbLog {
    fn log(&self, family: Family) -> MbxLog {
        let mut vlans = [0u64; 64];
        // Eight words somewhere in the 4096-bit set (the rest zero): the
        // input stays small.
        for (i, v) in self.vlans.iter().enumerate() {
            vlans[(self.vlan_at as usize + i) % 64] = *v;
        }
        let forged = MbxLog {
            flags: u32::from(self.flags),
            mac: self.mac,
            api: self.api,
            max_frame: self.max_frame,
            xcast: self.xcast,
            mc: self.mc,
            mc_count: self.mc_count % (MAX_MC as u8 + 1),
            vlans,
            macvlans: self.macvlans,
            ignored: self.ignored,
        };
        if self.forged {
            return forged;
        }
        // The ranges of the Linux PF drivers (Documentation/stream-format.rst,
        // PF_MBX), written out again here.
        let ixgbe = family == Family::Ixgbe;
        let mut mc = self.mc;
        for h in &mut mc[forged.mc_count as usize..] {
            *h = 0;
        }
        MbxLog {
            flags: forged.flags & 1,
            mac: self.mac.map(unicast),
            // ixgbe_mbox_api_10, _11 to _17.
            api: self
                .api
                .filter(|_| ixgbe)
                .map(|v| [0, 2, 3, 4, 5, 7, 8][v as usize % 7]),
            max_frame: self.max_frame.map(|v| match family {
                Family::Ixgbe => 68 + v % (9728 - 68 + 1),
                Family::Igb => v % (0x3f00 + 1),
            }),
            xcast: self.xcast.map(|v| match family {
                Family::Ixgbe => v % 4,
                Family::Igb => v & 2,
            }),
            mc,
            macvlans: if ixgbe {
                self.macvlans.map(|m| m.map(unicast))
            } else {
                [None; MAX_MACVLANS]
            },
            ..forged
        }
    }
}

/// Administrator settings within what `AdminConfig::decode` accepts.
#[derive(Arbitrary, Debug)]
struct ArbAdmin {
    mac: [u8; 6],
    vlan: u16,
    qos: u8,
    spoofchk: bool,
    trusted: bool,
    link_state: u8,
    vlan_proto: u16,
    min_tx_rate: u32,
    max_tx_rate: u32,
}

impl ArbAdmin {
    fn config(&self) -> AdminConfig {
        AdminConfig {
            mac: self.mac,
            vlan: self.vlan % 4096,
            qos: self.qos % 8,
            spoofchk: self.spoofchk,
            trusted: self.trusted,
            link_state: self.link_state % 3,
            vlan_proto: self.vlan_proto,
            min_tx_rate: self.min_tx_rate,
            max_tx_rate: self.max_tx_rate,
        }
    }
}

/// One edit of an encoded frame.
#[derive(Arbitrary, Debug)]
enum Mutation {
    Flip {
        at: u16,
        xor: u8,
    },
    SetU16 {
        at: u16,
        v: u16,
    },
    SetU32 {
        at: u16,
        v: u32,
    },
    /// A header field by its offset in the v1.0 header.
    Header {
        field: u8,
        v: u32,
    },
    /// Length, tag or flags of the n-th section header.
    SectionLen {
        nth: u8,
        v: u32,
    },
    SectionTag {
        nth: u8,
        tag: u16,
        flags: u16,
    },
    Truncate {
        at: u16,
    },
    Append {
        bytes: Vec<u8>,
    },
}

/// Offsets and widths of the header fields after the magic.
const HEADER_FIELDS: [(usize, usize); 12] = [
    (8, 2),
    (10, 2),
    (12, 2),
    (14, 1),
    (15, 1),
    (16, 2),
    (18, 2),
    (20, 2),
    (22, 2),
    (24, 4),
    (28, 4),
    (32, 4),
];

fn put(b: &mut [u8], at: usize, width: usize, v: u32) {
    for (i, byte) in v.to_le_bytes().into_iter().take(width).enumerate() {
        if let Some(x) = b.get_mut(at + i) {
            *x = byte;
        }
    }
}

/// Byte offset of the n-th section header of a frame we wrote.
fn section_at(b: &[u8], nth: u8) -> Option<usize> {
    let mut at = HEADER_LEN;
    for _ in 0..nth {
        let len = u32::from_le_bytes(b.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        at += SECTION_HEADER_LEN + len;
    }
    (at + SECTION_HEADER_LEN <= b.len()).then_some(at)
}

impl Mutation {
    /// Applies the edit (at most 4 adjacent bytes, or the length).
    fn apply(&self, b: &mut Vec<u8>) {
        let n = b.len();
        match self {
            Mutation::Flip { at, xor } => b[*at as usize % n] ^= xor,
            Mutation::SetU16 { at, v } => put(b, *at as usize % n, 2, u32::from(*v)),
            Mutation::SetU32 { at, v } => put(b, *at as usize % n, 4, *v),
            Mutation::Header { field, v } => {
                let (at, width) = HEADER_FIELDS[*field as usize % HEADER_FIELDS.len()];
                put(b, at, width, *v);
            }
            Mutation::SectionLen { nth, v } => {
                if let Some(at) = section_at(b, *nth % 6) {
                    put(b, at + 4, 4, *v);
                }
            }
            Mutation::SectionTag { nth, tag, flags } => {
                if let Some(at) = section_at(b, *nth % 6) {
                    put(b, at, 4, u32::from(*tag) | u32::from(*flags) << 16);
                }
            }
            Mutation::Truncate { at } => b.truncate(*at as usize % n),
            Mutation::Append { bytes } => b.extend(bytes.iter().take(64)),
        }
    }
}

/// Offset of the CRC field in the header.
const CRC_AT: usize = 32;

/// Whether an unsealed edit must be refused: any change of length, or an
/// in-place burst of at most 32 bits that leaves the CRC field alone (or
/// touches only it). An edit of both the CRC and the bytes next to it can
/// match by construction, and the fuzzer's compare tracing finds such.
fn must_refuse(good: &[u8], bad: &[u8]) -> bool {
    if good.len() != bad.len() {
        return true;
    }
    let crc = CRC_AT..CRC_AT + 4;
    let crc_edited = good[crc.clone()] != bad[crc.clone()];
    let rest_edited = good
        .iter()
        .zip(bad)
        .enumerate()
        .any(|(i, (a, b))| !crc.contains(&i) && a != b);
    !(crc_edited && rest_edited)
}

/// A device state and what the PF holds, as the source would save them.
#[derive(Arbitrary, Debug)]
struct Built {
    ixgbe: bool,
    revision: u8,
    /// Fewer queue pairs than the family has (`partial % (max + 1)`):
    /// what no source writes.
    partial: Option<u8>,
    rx: [[u32; 7]; MAX_QUEUES],
    tx: [[u32; 8]; MAX_QUEUES],
    irq: [u32; 4],
    ivar: [u32; 4],
    eitr: [u32; 3],
    mbx: Option<ArbLog>,
    admin: Option<ArbAdmin>,
    mutation: Mutation,
    reseal: bool,
}

impl Built {
    /// The state, with everything the map does not carry left zero (what
    /// a decoder gives back).
    fn state(&self, map: &RegMap) -> DeviceState {
        let max = map.max_queue_pairs;
        let mut s = DeviceState {
            queue_pairs: self.partial.map_or(max, |n| u32::from(n) % (max + 1)),
            ..DeviceState::default()
        };
        for q in 0..s.queue_pairs as usize {
            let r = self.rx[q];
            s.rx[q] = RxQueue {
                bal: r[0],
                bah: r[1],
                len: r[2],
                srrctl: r[3],
                head: r[4],
                tail: r[5],
                dctl: r[6],
            };
            let t = self.tx[q];
            s.tx[q] = TxQueue {
                bal: t[0],
                bah: t[1],
                len: t[2],
                head: t[3],
                tail: t[4],
                dctl: t[5],
                wbal: t[6],
                wbah: t[7],
            };
        }
        s.irq = IrqState {
            eims: self.irq[0],
            eiac: self.irq[1],
            eiam: self.irq[2],
            ivar_misc: self.irq[3],
            ..IrqState::default()
        };
        let iv = map.ivar_count as usize;
        s.irq.ivar[..iv].copy_from_slice(&self.ivar[..iv]);
        let ve = map.vectors as usize;
        s.irq.eitr[..ve].copy_from_slice(&self.eitr[..ve]);
        s
    }
}

fn structured(b: Built) {
    let family = if b.ixgbe { Family::Ixgbe } else { Family::Igb };
    let map = regmap(family);
    let header = header_for(
        family,
        map,
        PCI_VENDOR_ID_INTEL,
        device_id(family),
        b.revision,
    );
    let state = b.state(map);
    let pf = PfState {
        mbx: b.mbx.as_ref().map(|l| l.log(family)),
        admin: b.admin.as_ref().map(ArbAdmin::config),
    };
    let shape = DeviceShape::of(map);
    // What `save_state` writes: every queue pair, the mailbox log always,
    // within the ranges its PF accepts.
    let as_source =
        state.queue_pairs == map.max_queue_pairs && b.mbx.as_ref().is_some_and(|l| !l.forged);

    // Round trip of the compatibility frame.
    let mut compat = vec![0u8; COMPAT_FRAME_LEN];
    let n = write_compat_frame(&mut compat, header, map).expect("compat frame fits");
    assert_eq!(n, COMPAT_FRAME_LEN);
    let f = decode_frame(&compat).expect("own compat frame decodes");
    assert_eq!((f.shape, f.state, f.pf), (shape, None, PfState::default()));

    // Round trip of the state frame: exactly the state back, or a refusal
    // of what no source writes.
    let mut frame = vec![0u8; MAX_FRAME_LEN];
    let n = write_state_frame(&mut frame, header, map, &state, &pf).expect("state frame fits");
    frame.truncate(n);
    assert!(n <= state_frame_len(map) && state_frame_len(map) <= MAX_FRAME_LEN);
    if as_source && pf.admin.is_some() {
        assert_eq!(n, state_frame_len(map), "the documented length");
    }
    let sections = 3 + u16::from(pf.mbx.is_some()) + u16::from(pf.admin.is_some());
    let got = match decode_frame(&frame) {
        Ok(got) => got,
        Err(e) => {
            assert!(!as_source, "a source's own state frame refused: {e}");
            check_error(&e);
            return;
        }
    };
    let want = Frame {
        header: Header {
            section_count: sections,
            total_len: n as u32,
            crc: got.header.crc,
            ..header
        },
        shape,
        state: Some(state),
        pf,
    };
    assert_eq!(got, want, "encode -> decode gives the state back");
    if let Some(log) = &got.pf.mbx {
        check_replay(family, log);
    }

    // Both frames as the data fd carries them, and as a destination checks
    // them: accepted whole, then a third frame refused.
    let mut fd = compat.clone();
    fd.extend_from_slice(&frame);
    let (first, l1) = next_frame(&fd).expect("first frame");
    let (second, l2) = next_frame(&fd[l1..]).expect("second frame");
    assert_eq!((l1 + l2, first.state, second), (fd.len(), None, got));
    let mut dst = ResumeFile::new(caps_for(family, b.revision));
    for c in fd.chunks(97) {
        dst.write(c);
    }
    assert_eq!((dst.error, dst.pos), (None, fd.len()));
    assert_eq!(dst.seq.finish(), Ok(()), "the stream is complete");
    dst.write(&compat);
    assert!(dst.error.is_some(), "a frame after the state frame");

    // One field edited.
    let mut bad = frame.clone();
    b.mutation.apply(&mut bad);
    if bad == frame {
        return;
    }
    if !b.reseal {
        match decode_frame(&bad) {
            Err(e) => check_error(&e),
            Ok(_) => assert!(
                !must_refuse(&frame, &bad),
                "an edit without reseal was accepted"
            ),
        }
        return;
    }
    stream::reseal(&mut bad);
    match decode_frame(&bad) {
        Ok(f) => {
            if let Some(s) = &f.state {
                assert!(s.queue_pairs as usize <= MAX_QUEUES);
            }
        }
        Err(e) => check_error(&e),
    }
    raw(&bad);
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    // The same bytes, read as fields: a mutated seed is still a valid
    // (if different) structured input.
    let mut u = Unstructured::new(data);
    if let Ok(b) = Built::arbitrary(&mut u) {
        structured(b);
    }
});
