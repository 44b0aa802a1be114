// SPDX-License-Identifier: GPL-2.0

//! Device state as stream sections, and the frames the migration data fd
//! carries (Documentation/stream-format.rst).
//!
//! The data fd is a sequence of complete v1 streams ("frames"):
//! in PRE_COPY one *compatibility frame* (header + DEVICE section), which a
//! destination can check before the source stops; at STOP_COPY one *state
//! frame* (header + DEVICE + QUEUES + IRQ + PF_MBX, and PF_ADMIN when the
//! source's PF reports its settings). Nothing else: [`decode_frame`] refuses
//! a frame that is neither, [`FrameSequence`] a stream of other frames than
//! exactly those two, in that order, or one whose DEVICE section is not the
//! destination's shape. A destination loads the one state frame.

use super::admin::{AdminConfig, ADMIN_LEN};
use super::bytes::copy_into;
use super::hal::{DeviceState, IrqState, RxQueue, TxQueue, MAX_IVARS, MAX_QUEUES, MAX_VECTORS};
use super::ids::Family;
use super::mbx::{self, MbxLog};
use super::regs::RegMap;
use super::stream::{
    self, DeviceCaps, Header, Section, StreamError, Writer, SECTION_HEADER_LEN, SECTION_MANDATORY,
};

/// Section: the source device's shape (queue pairs, vectors, IVARs).
pub const TAG_DEVICE: u16 = 0x0001;
/// Section: every queue's ring registers.
pub const TAG_QUEUES: u16 = 0x0010;
/// Section: interrupt routing, moderation and masks.
pub const TAG_IRQ: u16 = 0x0011;
/// Section: the VF's accepted mailbox requests (PF-side state channel).
pub const TAG_PF_MBX: u16 = 0x0020;
/// Section: the administrator's settings for the VF at the PF.
pub const TAG_PF_ADMIN: u16 = 0x0021;

/// What the PF holds for the VF, carried beside the registers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PfState {
    /// The VF's accepted mailbox requests.
    pub mbx: Option<MbxLog>,
    /// The administrator's settings.
    pub admin: Option<AdminConfig>,
}

/// u32 words per queue pair in the QUEUES section (the RX then the TX
/// registers of `queue_regs.rs`, in their declaration order).
pub const QUEUE_WORDS: usize = RxQueue::LEN + TxQueue::LEN;
const DEVICE_LEN: usize = 12;
const QUEUES_MAX_LEN: usize = 4 + MAX_QUEUES * QUEUE_WORDS * 4;
const IRQ_MAX_LEN: usize = 4 * (4 + 1 + MAX_IVARS + 1 + MAX_VECTORS);

/// Largest state frame any family produces.
pub const MAX_FRAME_LEN: usize = stream::HEADER_LEN
    + 4 * SECTION_HEADER_LEN
    + DEVICE_LEN
    + QUEUES_MAX_LEN
    + IRQ_MAX_LEN
    + mbx::ENCODED_LEN
    + SECTION_HEADER_LEN
    + ADMIN_LEN;

/// A small no-alloc little-endian encoder.
struct Put<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Put<N> {
    fn new() -> Self {
        Put {
            buf: [0; N],
            len: 0,
        }
    }

    fn u32(&mut self, v: u32) {
        copy_into(&mut self.buf[self.len..self.len + 4], &v.to_le_bytes());
        self.len += 4;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A little-endian decoder that fails with the section's name.
struct Get<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl Get<'_> {
    fn u32(&mut self) -> Result<u32, StreamError> {
        if self.b.len() < 4 {
            return Err(StreamError::Malformed {
                field: self.what,
                value: self.b.len() as u64,
                expected: 4,
            });
        }
        let v = u32::from_le_bytes([self.b[0], self.b[1], self.b[2], self.b[3]]);
        self.b = &self.b[4..];
        Ok(v)
    }

    fn count(&mut self, max: usize) -> Result<usize, StreamError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(StreamError::Malformed {
                field: self.what,
                value: n as u64,
                expected: max as u64,
            });
        }
        Ok(n)
    }

    fn end(&self) -> Result<(), StreamError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(StreamError::Malformed {
                field: self.what,
                value: self.b.len() as u64,
                expected: 0,
            })
        }
    }
}

fn device_section(map: &RegMap) -> Put<DEVICE_LEN> {
    let mut p = Put::new();
    p.u32(map.max_queue_pairs);
    p.u32(map.vectors);
    p.u32(map.ivar_count);
    p
}

/// Writes the compatibility frame (header + DEVICE) into `buf`.
pub fn write_compat_frame(
    buf: &mut [u8],
    header: Header,
    map: &RegMap,
) -> Result<usize, StreamError> {
    let mut w = Writer::new(buf, header)?;
    w.section(TAG_DEVICE, SECTION_MANDATORY, device_section(map).bytes())?;
    Ok(w.finish())
}

/// Writes the state frame (header + DEVICE + QUEUES + IRQ, and PF_MBX and
/// PF_ADMIN for what `pf` holds) into `buf`.
pub fn write_state_frame(
    buf: &mut [u8],
    header: Header,
    map: &RegMap,
    s: &DeviceState,
    pf: &PfState,
) -> Result<usize, StreamError> {
    let mut w = Writer::new(buf, header)?;
    w.section(TAG_DEVICE, SECTION_MANDATORY, device_section(map).bytes())?;
    let mut q = Put::<QUEUES_MAX_LEN>::new();
    q.u32(s.queue_pairs);
    for i in 0..s.queue_pairs as usize {
        for v in s.rx[i].words().into_iter().chain(s.tx[i].words()) {
            q.u32(v);
        }
    }
    w.section(TAG_QUEUES, SECTION_MANDATORY, q.bytes())?;
    let mut i = Put::<IRQ_MAX_LEN>::new();
    for v in [s.irq.eims, s.irq.eiac, s.irq.eiam, s.irq.ivar_misc] {
        i.u32(v);
    }
    i.u32(map.ivar_count);
    for v in &s.irq.ivar[..map.ivar_count as usize] {
        i.u32(*v);
    }
    i.u32(map.vectors);
    for v in &s.irq.eitr[..map.vectors as usize] {
        i.u32(*v);
    }
    w.section(TAG_IRQ, SECTION_MANDATORY, i.bytes())?;
    if let Some(log) = &pf.mbx {
        let mut b = [0u8; mbx::ENCODED_LEN];
        log.encode(&mut b);
        w.section(TAG_PF_MBX, SECTION_MANDATORY, &b)?;
    }
    if let Some(admin) = &pf.admin {
        let mut b = [0u8; ADMIN_LEN];
        admin.encode(&mut b);
        w.section(TAG_PF_ADMIN, SECTION_MANDATORY, &b)?;
    }
    Ok(w.finish())
}

/// The source device's shape, from a DEVICE section.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeviceShape {
    /// Queue pairs.
    pub queue_pairs: u32,
    /// MSI-X vectors.
    pub vectors: u32,
    /// IVAR registers.
    pub ivar_count: u32,
}

impl DeviceShape {
    /// The shape of a device with register map `map`: what its DEVICE
    /// section says.
    pub const fn of(map: &RegMap) -> DeviceShape {
        DeviceShape {
            queue_pairs: map.max_queue_pairs,
            vectors: map.vectors,
            ivar_count: map.ivar_count,
        }
    }
}

/// The two kinds of frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// DEVICE only: PRE_COPY's initial bytes.
    Compat,
    /// DEVICE and the state sections: STOP_COPY's data.
    State,
}

impl FrameKind {
    /// Its name in messages ("compatibility", "state").
    pub const fn name(self) -> &'static str {
        match self {
            FrameKind::Compat => "compatibility",
            FrameKind::State => "state",
        }
    }
}

/// What a frame held.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its header.
    pub header: Header,
    /// The DEVICE section.
    pub shape: DeviceShape,
    /// The state, if this is a state frame.
    pub state: Option<DeviceState>,
    /// What the PF held for the VF, as far as the frame carries it.
    pub pf: PfState,
}

impl Frame {
    /// Whether this is a compatibility or a state frame.
    pub const fn kind(&self) -> FrameKind {
        if self.state.is_some() {
            FrameKind::State
        } else {
            FrameKind::Compat
        }
    }
}

fn decode_device(p: &[u8]) -> Result<DeviceShape, StreamError> {
    let mut g = Get {
        b: p,
        what: "DEVICE section",
    };
    let shape = DeviceShape {
        queue_pairs: g.u32()?,
        vectors: g.u32()?,
        ivar_count: g.u32()?,
    };
    g.end()?;
    Ok(shape)
}

fn decode_queues(p: &[u8], s: &mut DeviceState) -> Result<(), StreamError> {
    let mut g = Get {
        b: p,
        what: "QUEUES section",
    };
    let n = g.count(MAX_QUEUES)?;
    s.queue_pairs = n as u32;
    for i in 0..n {
        let mut rx = [0u32; RxQueue::LEN];
        for w in &mut rx {
            *w = g.u32()?;
        }
        let mut tx = [0u32; TxQueue::LEN];
        for w in &mut tx {
            *w = g.u32()?;
        }
        s.rx[i] = RxQueue::from_words(rx);
        s.tx[i] = TxQueue::from_words(tx);
    }
    g.end()
}

/// An IRQ section: the state, its IVAR count and its vector count.
fn decode_irq(p: &[u8]) -> Result<(IrqState, usize, usize), StreamError> {
    let mut g = Get {
        b: p,
        what: "IRQ section",
    };
    let mut irq = IrqState {
        eims: g.u32()?,
        eiac: g.u32()?,
        eiam: g.u32()?,
        ivar_misc: g.u32()?,
        ..IrqState::default()
    };
    let ivars = g.count(MAX_IVARS)?;
    for v in &mut irq.ivar[..ivars] {
        *v = g.u32()?;
    }
    let vectors = g.count(MAX_VECTORS)?;
    for v in &mut irq.eitr[..vectors] {
        *v = g.u32()?;
    }
    g.end()?;
    Ok((irq, ivars, vectors))
}

/// The sections this code knows, in the order a source writes them: tag,
/// name, and the field their count is reported under.
const KNOWN: [(u16, &str, &str); 5] = [
    (TAG_DEVICE, "DEVICE", "DEVICE section count"),
    (TAG_QUEUES, "QUEUES", "QUEUES section count"),
    (TAG_IRQ, "IRQ", "IRQ section count"),
    (TAG_PF_MBX, "PF_MBX", "PF_MBX section count"),
    (TAG_PF_ADMIN, "PF_ADMIN", "PF_ADMIN section count"),
];

/// Index of a known tag in [`KNOWN`].
fn known(tag: u16) -> Option<usize> {
    KNOWN.iter().position(|&(t, _, _)| t == tag)
}

/// The name of section `tag` ("DEVICE", "QUEUES", ...), "unknown" for a tag
/// this code does not know.
pub fn section_name(tag: u16) -> &'static str {
    match known(tag) {
        Some(i) => KNOWN[i].1,
        None => "unknown",
    }
}

/// Refuses a frame that has `KNOWN[i]` `have` times instead of once.
fn need_one(have: [u8; 5], i: usize) -> Result<(), StreamError> {
    if have[i] == 1 {
        return Ok(());
    }
    Err(StreamError::Malformed {
        field: KNOWN[i].2,
        value: u64::from(have[i]),
        expected: 1,
    })
}

/// Refuses a section count that is not the DEVICE section's.
fn same_count(field: &'static str, value: usize, device: u32) -> Result<(), StreamError> {
    if value as u64 == u64::from(device) {
        return Ok(());
    }
    Err(StreamError::Malformed {
        field,
        value: value as u64,
        expected: u64::from(device),
    })
}

/// Parses one complete frame: stream checks, then sections.
///
/// Accepted are exactly the two frames a source writes, each known section
/// at most once:
///
/// * a compatibility frame: DEVICE;
/// * a state frame: DEVICE, QUEUES, IRQ and PF_MBX (the source always has
///   its mailbox log), PF_ADMIN when the source's PF reported its settings;
///   QUEUES holds as many queue pairs, and IRQ as many IVARs and vectors,
///   as DEVICE says.
///
/// A frame with any of QUEUES, IRQ, PF_MBX or PF_ADMIN is a state frame and
/// must have all the others but PF_ADMIN. Unknown optional sections are
/// skipped (a newer minor's), unknown mandatory ones refused. Whether the
/// frame comes where it does, and is for this device, is
/// [`FrameSequence`]'s question.
pub fn decode_frame(b: &[u8]) -> Result<Frame, StreamError> {
    let (header, sections) = stream::parse(b)?;
    let mut shape = DeviceShape {
        queue_pairs: 0,
        vectors: 0,
        ivar_count: 0,
    };
    let mut state = DeviceState::default();
    let (mut ivars, mut vectors) = (0, 0);
    let mut pf = PfState::default();
    // How many times each of KNOWN was seen: a second one is refused at once.
    let mut have = [0u8; 5];
    for Section {
        tag,
        flags,
        payload,
    } in sections
    {
        let Some(i) = known(tag) else {
            if flags & SECTION_MANDATORY != 0 {
                return Err(StreamError::UnknownMandatorySection { tag });
            }
            continue;
        };
        if have[i] != 0 {
            return Err(StreamError::Malformed {
                field: KNOWN[i].2,
                value: u64::from(have[i]) + 1,
                expected: 1,
            });
        }
        have[i] = 1;
        match tag {
            TAG_DEVICE => shape = decode_device(payload)?,
            TAG_QUEUES => decode_queues(payload, &mut state)?,
            TAG_IRQ => (state.irq, ivars, vectors) = decode_irq(payload)?,
            TAG_PF_MBX => {
                // The log's ranges are the source family's: the header's.
                let family = Family::from_code(header.family).ok_or(StreamError::Malformed {
                    field: "PF_MBX family",
                    value: u64::from(header.family),
                    expected: Family::Igb as u64,
                })?;
                pf.mbx = Some(MbxLog::decode(family, payload)?);
            }
            // TAG_PF_ADMIN, the last of KNOWN.
            _ => {
                pf.admin = Some(AdminConfig::decode(payload).ok_or(StreamError::Malformed {
                    field: "PF_ADMIN section",
                    value: payload.len() as u64,
                    expected: ADMIN_LEN as u64,
                })?);
            }
        }
    }
    need_one(have, 0)?;
    let is_state = have[1..].iter().any(|&n| n != 0);
    if is_state {
        // QUEUES, IRQ, PF_MBX; PF_ADMIN is the one a source may lack.
        for i in 1..4 {
            need_one(have, i)?;
        }
        same_count(
            "QUEUES queue pair count",
            state.queue_pairs as usize,
            shape.queue_pairs,
        )?;
        same_count("IRQ IVAR count", ivars, shape.ivar_count)?;
        same_count("IRQ vector count", vectors, shape.vectors)?;
    }
    Ok(Frame {
        header,
        shape,
        state: is_state.then_some(state),
        pf,
    })
}

/// The frame grammar of a resume: one compatibility frame, then one state
/// frame, then nothing; every frame's DEVICE section the device's shape.
///
/// Fed each complete frame in order ([`FrameSequence::accept`]); asked at
/// the end whether the stream is complete ([`FrameSequence::finish`]). The
/// first refusal leaves it as it was; a caller keeps that error sticky.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FrameSequence {
    device: DeviceShape,
    frames: u32,
}

impl FrameSequence {
    /// Frames in a complete stream.
    pub const FRAMES: u32 = 2;

    /// No frame yet, for a destination of shape `device`.
    pub const fn new(device: DeviceShape) -> FrameSequence {
        FrameSequence { device, frames: 0 }
    }

    /// Frames accepted so far.
    pub const fn frames(&self) -> u32 {
        self.frames
    }

    /// Whether the state frame is in: any further frame is refused.
    pub const fn complete(&self) -> bool {
        self.frames >= Self::FRAMES
    }

    /// The next frame of the stream, as [`decode_frame`] gave it.
    ///
    /// Refused: a frame where the grammar wants another kind, or any frame
    /// after the state frame ([`StreamError::UnexpectedFrame`]); a DEVICE
    /// section that is not the device's shape ([`StreamError::WrongDevice`]
    /// naming "DEVICE queue_pairs", "DEVICE vectors" or "DEVICE ivar_count").
    pub fn accept(&mut self, frame: &Frame) -> Result<(), StreamError> {
        let expected = match self.frames {
            0 => Some(FrameKind::Compat),
            1 => Some(FrameKind::State),
            _ => None,
        };
        let found = frame.kind();
        if expected != Some(found) {
            return Err(StreamError::UnexpectedFrame {
                index: self.frames + 1,
                found,
                expected,
            });
        }
        let (s, d) = (&frame.shape, &self.device);
        for (field, stream, device) in [
            ("DEVICE queue_pairs", s.queue_pairs, d.queue_pairs),
            ("DEVICE vectors", s.vectors, d.vectors),
            ("DEVICE ivar_count", s.ivar_count, d.ivar_count),
        ] {
            if stream != device {
                return Err(StreamError::WrongDevice {
                    field,
                    stream,
                    device,
                });
            }
        }
        self.frames += 1;
        Ok(())
    }

    /// Checks the frames of a resume file that `buf[*pos..]` completes, as
    /// the bytes come in (the module's `write`, a fuzzer, the tests).
    ///
    /// `buf` holds everything written so far and `*pos` where the first
    /// frame not yet accepted starts. Per frame: the magic is checked as
    /// soon as its bytes are in, the header against `caps`
    /// ([`stream::check_compat`]) as soon as it is complete (a destination
    /// refuses on the header alone, before the source stops), and the frame
    /// is decoded ([`decode_frame`]) and placed in the sequence
    /// ([`FrameSequence::accept`]) when its last byte is in; then `*pos`
    /// moves past it. A frame not yet complete is `Ok` and waits for more
    /// bytes. On an error `*pos` stays at the refused frame.
    pub fn feed(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        caps: &DeviceCaps,
    ) -> Result<(), StreamError> {
        loop {
            let rest = &buf[*pos..];
            if rest.len() < stream::HEADER_LEN {
                // Magic is checked as soon as its bytes are in.
                return match stream::parse_header(rest) {
                    Err(StreamError::BadMagic) => Err(StreamError::BadMagic),
                    _ => Ok(()),
                };
            }
            let h = stream::parse_header(rest)?;
            stream::check_compat(&h, caps)?;
            let total = h.total_len as usize;
            if rest.len() < total {
                return Ok(());
            }
            let frame = decode_frame(&rest[..total])?;
            self.accept(&frame)?;
            *pos += total;
        }
    }

    /// What a load refuses when [`FrameSequence::feed`] left bytes at
    /// `buf[pos..]`, a frame that never completed
    /// ([`StreamError::Truncated`]); `None` when every byte was a frame.
    pub fn unfinished(buf: &[u8], pos: usize) -> Option<StreamError> {
        let rest = buf.get(pos..).filter(|r| !r.is_empty())?;
        Some(StreamError::Truncated {
            need: stream::parse_header(rest)
                .map(|h| h.total_len as usize)
                .unwrap_or(stream::HEADER_LEN),
            have: rest.len(),
        })
    }

    /// The stream is over (the user asks to load it): refused
    /// ([`StreamError::NoStateFrame`]) unless the state frame came.
    pub const fn finish(&self) -> Result<(), StreamError> {
        if self.complete() {
            Ok(())
        } else {
            Err(StreamError::NoStateFrame {
                frames: self.frames,
                expected: Self::FRAMES,
            })
        }
    }
}

/// Decodes the frame at the start of `b`; returns it and its length.
///
/// `b` may hold more frames after this one; a frame cut short is
/// [`StreamError::Truncated`].
pub fn next_frame(b: &[u8]) -> Result<(Frame, usize), StreamError> {
    let h = stream::parse_header(b)?;
    let len = h.total_len as usize;
    if b.len() < len {
        return Err(StreamError::Truncated {
            need: len,
            have: b.len(),
        });
    }
    Ok((decode_frame(&b[..len])?, len))
}

/// Length of the state frame of a device with register map `map`,
/// mailbox log included.
pub const fn state_frame_len(map: &RegMap) -> usize {
    stream::HEADER_LEN
        + 5 * SECTION_HEADER_LEN
        + mbx::ENCODED_LEN
        + ADMIN_LEN
        + DEVICE_LEN
        + 4
        + map.max_queue_pairs as usize * QUEUE_WORDS * 4
        + 4 * (4 + 1 + map.ivar_count as usize + 1 + map.vectors as usize)
}

/// Length of the compatibility frame.
pub const COMPAT_FRAME_LEN: usize = stream::HEADER_LEN + SECTION_HEADER_LEN + DEVICE_LEN;

/// Header for a device of `family` (queue pairs from its register map).
pub fn header_for(family: Family, map: &RegMap, vendor: u16, device: u16, revision: u8) -> Header {
    Header::new(
        family,
        vendor,
        device,
        revision,
        map.max_queue_pairs as u16,
        0,
    )
}
