// SPDX-License-Identifier: GPL-2.0

//! The device-state stream, format v1 (see Documentation/stream-format.rst).
//!
//! A stream is a fixed little-endian header followed by tagged sections:
//!
//! ```text
//! header   magic "IVFSTATE", major, minor, header_len, family, revision,
//!          vendor, device, queue_pairs, section_count, features,
//!          total_len, crc32c (over the whole stream, this field as 0)
//! section  tag u16, flags u16 (bit 0: mandatory), len u32, payload[len]
//! ```
//!
//! Parsing checks everything before anything is used: a stream that parses
//! is complete, intact, of our major version and well formed. Whether the
//! device at hand can take it is [`check_compat`]'s question; whether the
//! frames of a data fd follow the grammar, and describe this device,
//! [`FrameSequence`]'s. Each rejection has its own [`StreamError`] variant
//! and errno.
//!
//! [`FrameSequence`]: super::state::FrameSequence

use super::bytes::copy_into;
use super::crc32c;
use super::ids::Family;
use super::state::FrameKind;

/// The 8 bytes every stream starts with.
pub const MAGIC: [u8; 8] = *b"IVFSTATE";
/// Format major version written and accepted: another major is refused.
pub const MAJOR: u16 = 1;
/// Format minor version written: any minor of our major is readable.
pub const MINOR: u16 = 0;
/// Length of the v1.0 header; later minors may write a longer one.
pub const HEADER_LEN: usize = 40;
/// Length of a section header.
pub const SECTION_HEADER_LEN: usize = 8;
/// Largest stream accepted: far above any real state, bounds the kernel's buffer.
pub const MAX_STREAM_LEN: usize = 64 * 1024;
/// Section flag: a reader that does not know the tag must refuse the stream.
pub const SECTION_MANDATORY: u16 = 1 << 0;

/// The errno table, where it always was for the stream's users.
pub use super::errno;

/// Why a stream was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// Fewer bytes than the header or `total_len` requires (EMSGSIZE).
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Longer than [`MAX_STREAM_LEN`] or than the buffer it is written to (EFBIG).
    TooLarge {
        /// Bytes offered or needed.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first 8 bytes are not [`MAGIC`] (EINVAL).
    BadMagic,
    /// A major version other than [`MAJOR`] (EPROTONOSUPPORT).
    UnsupportedMajor {
        /// Major in the stream.
        found: u16,
        /// Major this code reads.
        supported: u16,
    },
    /// The CRC-32C does not match the contents (EBADMSG).
    BadChecksum {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// A header or section field is inconsistent (EPROTO).
    Malformed {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What it had to be (a bound or the expected value).
        expected: u64,
    },
    /// A mandatory section this code does not know (ENOPROTOOPT).
    UnknownMandatorySection {
        /// Its tag.
        tag: u16,
    },
    /// Another device family, device or revision, or a DEVICE section whose
    /// shape is not the device's (ENODEV).
    WrongDevice {
        /// Which field differs ("family", "vendor", "device", "revision",
        /// "DEVICE queue_pairs", "DEVICE vectors", "DEVICE ivar_count").
        field: &'static str,
        /// Value in the stream.
        stream: u32,
        /// Value of the device.
        device: u32,
    },
    /// More queue pairs than the device has (ERANGE).
    TooManyQueues {
        /// Queue pairs in the stream.
        stream: u16,
        /// Queue pairs the device has.
        device: u16,
    },
    /// Feature bits the device lacks (EOPNOTSUPP).
    MissingFeatures {
        /// The bits missing.
        missing: u32,
    },
    /// A frame out of the grammar "one compatibility frame, then one state
    /// frame, then nothing" (EILSEQ; see [`FrameSequence`]).
    ///
    /// [`FrameSequence`]: super::state::FrameSequence
    UnexpectedFrame {
        /// Its position in the stream, from 1.
        index: u32,
        /// What it is.
        found: FrameKind,
        /// What the grammar allows there; `None`: no frame at all (the
        /// stream was complete).
        expected: Option<FrameKind>,
    },
    /// The stream ended without its state frame (ENODATA).
    NoStateFrame {
        /// Complete frames received.
        frames: u32,
        /// Frames of a complete stream (2).
        expected: u32,
    },
}

impl StreamError {
    /// The errno the kernel returns for this rejection (positive).
    pub const fn errno(&self) -> i32 {
        match self {
            StreamError::Truncated { .. } => errno::EMSGSIZE,
            StreamError::TooLarge { .. } => errno::EFBIG,
            StreamError::BadMagic => errno::EINVAL,
            StreamError::UnsupportedMajor { .. } => errno::EPROTONOSUPPORT,
            StreamError::BadChecksum { .. } => errno::EBADMSG,
            StreamError::Malformed { .. } => errno::EPROTO,
            StreamError::UnknownMandatorySection { .. } => errno::ENOPROTOOPT,
            StreamError::WrongDevice { .. } => errno::ENODEV,
            StreamError::TooManyQueues { .. } => errno::ERANGE,
            StreamError::MissingFeatures { .. } => errno::EOPNOTSUPP,
            StreamError::UnexpectedFrame { .. } => errno::EILSEQ,
            StreamError::NoStateFrame { .. } => errno::ENODATA,
        }
    }
}

impl core::fmt::Display for StreamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            StreamError::Truncated { need, have } => {
                write!(f, "stream truncated: need {need} bytes, have {have}")
            }
            StreamError::TooLarge { len, max } => {
                write!(f, "stream too large: {len} bytes, limit {max}")
            }
            StreamError::BadMagic => write!(f, "not a device-state stream (bad magic)"),
            StreamError::UnsupportedMajor { found, supported } => write!(
                f,
                "format major {found} is not readable here (this side reads major {supported})"
            ),
            StreamError::BadChecksum { stored, computed } => write!(
                f,
                "stream corrupt: crc32c {stored:#010x} stored, {computed:#010x} computed"
            ),
            StreamError::Malformed {
                field,
                value,
                expected,
            } => write!(
                f,
                "malformed stream: {field} is {value}, expected {expected}"
            ),
            StreamError::UnknownMandatorySection { tag } => {
                write!(f, "unknown mandatory section {tag:#06x}")
            }
            StreamError::WrongDevice {
                field,
                stream,
                device,
            } => write!(
                f,
                "stream is for another device: {field} {stream:#x} in stream, {device:#x} here"
            ),
            StreamError::TooManyQueues { stream, device } => write!(
                f,
                "stream has {stream} queue pairs, the device has {device}"
            ),
            StreamError::MissingFeatures { missing } => {
                write!(f, "stream needs features {missing:#x} the device lacks")
            }
            StreamError::UnexpectedFrame {
                index,
                found,
                expected: Some(expected),
            } => write!(
                f,
                "frame {index} is a {} frame, expected a {} frame",
                found.name(),
                expected.name()
            ),
            StreamError::UnexpectedFrame {
                index,
                found,
                expected: None,
            } => write!(
                f,
                "frame {index} is a {} frame, expected the end of the stream \
                 (it ended with its state frame)",
                found.name()
            ),
            StreamError::NoStateFrame { frames, expected } => write!(
                f,
                "stream ended after {frames} frames without its state frame, \
                 expected {expected} frames"
            ),
        }
    }
}

/// The header's fields (what [`Writer::new`] takes and [`parse`] returns).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// Header length in bytes.
    pub header_len: u16,
    /// Device family wire code ([`Family`] as u8).
    pub family: u8,
    /// PCI revision of the source VF.
    pub revision: u8,
    /// PCI vendor of the source VF.
    pub vendor: u16,
    /// PCI device of the source VF.
    pub device: u16,
    /// Queue pairs in use on the source.
    pub queue_pairs: u16,
    /// Number of sections.
    pub section_count: u16,
    /// Feature bits the destination must have.
    pub features: u32,
    /// Length of the whole stream.
    pub total_len: u32,
    /// CRC-32C over the stream with this field as zero.
    pub crc: u32,
}

impl Header {
    /// A v1.0 header for a device; counts, length and CRC are filled in by [`Writer`].
    pub const fn new(
        family: Family,
        vendor: u16,
        device: u16,
        revision: u8,
        queue_pairs: u16,
        features: u32,
    ) -> Header {
        Header {
            major: MAJOR,
            minor: MINOR,
            header_len: HEADER_LEN as u16,
            family: family as u8,
            revision,
            vendor,
            device,
            queue_pairs,
            section_count: 0,
            features,
            total_len: 0,
            crc: 0,
        }
    }

    /// Writes the v1.0 header fields into `b` (at least [`HEADER_LEN`]
    /// bytes): magic, every field, `crc` as it stands, the reserved bytes
    /// zero. [`reseal`] then fixes the CRC of the whole stream.
    pub fn write_into(&self, b: &mut [u8]) {
        copy_into(&mut b[off::MAGIC..off::MAGIC + MAGIC.len()], &MAGIC);
        copy_into(
            &mut b[off::MAJOR..off::MAJOR + 2],
            &self.major.to_le_bytes(),
        );
        copy_into(
            &mut b[off::MINOR..off::MINOR + 2],
            &self.minor.to_le_bytes(),
        );
        copy_into(
            &mut b[off::HEADER_LEN..off::HEADER_LEN + 2],
            &self.header_len.to_le_bytes(),
        );
        b[off::FAMILY] = self.family;
        b[off::REVISION] = self.revision;
        copy_into(
            &mut b[off::VENDOR..off::VENDOR + 2],
            &self.vendor.to_le_bytes(),
        );
        copy_into(
            &mut b[off::DEVICE..off::DEVICE + 2],
            &self.device.to_le_bytes(),
        );
        copy_into(
            &mut b[off::QUEUE_PAIRS..off::QUEUE_PAIRS + 2],
            &self.queue_pairs.to_le_bytes(),
        );
        copy_into(
            &mut b[off::SECTION_COUNT..off::SECTION_COUNT + 2],
            &self.section_count.to_le_bytes(),
        );
        copy_into(
            &mut b[off::FEATURES..off::FEATURES + 4],
            &self.features.to_le_bytes(),
        );
        copy_into(
            &mut b[off::TOTAL_LEN..off::TOTAL_LEN + 4],
            &self.total_len.to_le_bytes(),
        );
        copy_into(&mut b[off::CRC..off::CRC + 4], &self.crc.to_le_bytes());
        copy_into(
            &mut b[off::RESERVED..HEADER_LEN],
            &[0; HEADER_LEN - off::RESERVED],
        );
    }
}

/// Byte offsets of the v1.0 header's fields: the one place the layout is
/// written (parse, write and the tools that forge headers use these).
pub mod off {
    /// `magic`, 8 bytes.
    pub const MAGIC: usize = 0;
    /// `major`, u16.
    pub const MAJOR: usize = 8;
    /// `minor`, u16.
    pub const MINOR: usize = 10;
    /// `header_len`, u16.
    pub const HEADER_LEN: usize = 12;
    /// `family`, u8.
    pub const FAMILY: usize = 14;
    /// `revision`, u8.
    pub const REVISION: usize = 15;
    /// `vendor`, u16.
    pub const VENDOR: usize = 16;
    /// `device`, u16.
    pub const DEVICE: usize = 18;
    /// `queue_pairs`, u16.
    pub const QUEUE_PAIRS: usize = 20;
    /// `section_count`, u16.
    pub const SECTION_COUNT: usize = 22;
    /// `features`, u32.
    pub const FEATURES: usize = 24;
    /// `total_len`, u32.
    pub const TOTAL_LEN: usize = 28;
    /// `crc32c`, u32.
    pub const CRC: usize = 32;
    /// Reserved, zero, up to [`super::HEADER_LEN`].
    pub const RESERVED: usize = 36;
}

/// Offset of the CRC field in the header.
const CRC_OFFSET: usize = off::CRC;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// CRC of a whole stream with its CRC field taken as zero.
fn stream_crc(stream: &[u8]) -> u32 {
    let c = crc32c::update(0, &stream[..CRC_OFFSET]);
    let c = crc32c::update(c, &[0; 4]);
    crc32c::update(c, &stream[CRC_OFFSET + 4..])
}

/// Recomputes the CRC of a frame whose bytes were edited after it was
/// written (tools and tests that forge streams on purpose). A buffer
/// shorter than a header is left as it is.
pub fn reseal(frame: &mut [u8]) {
    if frame.len() < HEADER_LEN {
        return;
    }
    let crc = stream_crc(frame);
    copy_into(&mut frame[CRC_OFFSET..CRC_OFFSET + 4], &crc.to_le_bytes());
}

/// Writes a stream into a caller-provided buffer (no allocation).
pub struct Writer<'a> {
    buf: &'a mut [u8],
    header: Header,
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts a stream with `header` in `buf`.
    pub fn new(buf: &'a mut [u8], header: Header) -> Result<Writer<'a>, StreamError> {
        if buf.len() < HEADER_LEN {
            return Err(StreamError::TooLarge {
                len: HEADER_LEN,
                max: buf.len(),
            });
        }
        Ok(Writer {
            buf,
            header: Header {
                header_len: HEADER_LEN as u16,
                section_count: 0,
                ..header
            },
            pos: HEADER_LEN,
        })
    }

    /// Appends a section.
    pub fn section(&mut self, tag: u16, flags: u16, payload: &[u8]) -> Result<(), StreamError> {
        let end = self.pos + SECTION_HEADER_LEN + payload.len();
        if end > self.buf.len().min(MAX_STREAM_LEN) {
            return Err(StreamError::TooLarge {
                len: end,
                max: self.buf.len().min(MAX_STREAM_LEN),
            });
        }
        let p = self.pos;
        copy_into(&mut self.buf[p..p + 2], &tag.to_le_bytes());
        copy_into(&mut self.buf[p + 2..p + 4], &flags.to_le_bytes());
        copy_into(
            &mut self.buf[p + 4..p + 8],
            &(payload.len() as u32).to_le_bytes(),
        );
        copy_into(&mut self.buf[p + 8..end], payload);
        self.pos = end;
        self.header.section_count += 1;
        Ok(())
    }

    /// Writes the header and CRC; returns the stream's length.
    pub fn finish(self) -> usize {
        let h = Header {
            total_len: self.pos as u32,
            ..self.header
        };
        let b = &mut self.buf[..self.pos];
        // The CRC is computed with its field zero.
        Header { crc: 0, ..h }.write_into(b);
        reseal(b);
        self.pos
    }
}

/// One section of a parsed stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Section<'a> {
    /// Its tag.
    pub tag: u16,
    /// Its flags ([`SECTION_MANDATORY`]).
    pub flags: u16,
    /// Its payload.
    pub payload: &'a [u8],
}

impl Section<'_> {
    /// Whether a reader must understand this section.
    pub const fn mandatory(&self) -> bool {
        self.flags & SECTION_MANDATORY != 0
    }
}

/// The sections of a stream that [`parse`] accepted.
#[derive(Clone, Debug)]
pub struct Sections<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Sections<'a> {
    type Item = Section<'a>;

    fn next(&mut self) -> Option<Section<'a>> {
        // `parse` validated every section boundary already.
        if self.rest.len() < SECTION_HEADER_LEN {
            return None;
        }
        let len = le32(self.rest, 4) as usize;
        let s = Section {
            tag: le16(self.rest, 0),
            flags: le16(self.rest, 2),
            payload: &self.rest[SECTION_HEADER_LEN..SECTION_HEADER_LEN + len],
        };
        self.rest = &self.rest[SECTION_HEADER_LEN + len..];
        Some(s)
    }
}

/// Reads just the header fields, checking magic, major and size bounds.
///
/// This is what a destination checks first (PRE_COPY's initial bytes).
pub fn parse_header(b: &[u8]) -> Result<Header, StreamError> {
    if b.len() >= MAGIC.len() && b[..MAGIC.len()] != MAGIC {
        return Err(StreamError::BadMagic);
    }
    if b.len() < HEADER_LEN {
        return Err(StreamError::Truncated {
            need: HEADER_LEN,
            have: b.len(),
        });
    }
    let h = Header {
        major: le16(b, off::MAJOR),
        minor: le16(b, off::MINOR),
        header_len: le16(b, off::HEADER_LEN),
        family: b[off::FAMILY],
        revision: b[off::REVISION],
        vendor: le16(b, off::VENDOR),
        device: le16(b, off::DEVICE),
        queue_pairs: le16(b, off::QUEUE_PAIRS),
        section_count: le16(b, off::SECTION_COUNT),
        features: le32(b, off::FEATURES),
        total_len: le32(b, off::TOTAL_LEN),
        crc: le32(b, off::CRC),
    };
    if h.major != MAJOR {
        return Err(StreamError::UnsupportedMajor {
            found: h.major,
            supported: MAJOR,
        });
    }
    if (h.header_len as usize) < HEADER_LEN {
        return Err(StreamError::Malformed {
            field: "header_len",
            value: u64::from(h.header_len),
            expected: HEADER_LEN as u64,
        });
    }
    if h.total_len as usize > MAX_STREAM_LEN {
        return Err(StreamError::TooLarge {
            len: h.total_len as usize,
            max: MAX_STREAM_LEN,
        });
    }
    if (h.total_len as usize) < h.header_len as usize {
        return Err(StreamError::Malformed {
            field: "total_len",
            value: u64::from(h.total_len),
            expected: u64::from(h.header_len),
        });
    }
    Ok(h)
}

/// Validates a whole stream: header, length, CRC and section layout.
///
/// `b` must be exactly the stream: missing bytes are [`StreamError::Truncated`],
/// extra bytes [`StreamError::TooLarge`]. Sections are only checked for
/// layout here; unknown mandatory tags are the consumer's to refuse, with
/// [`StreamError::UnknownMandatorySection`].
pub fn parse(b: &[u8]) -> Result<(Header, Sections<'_>), StreamError> {
    if b.len() > MAX_STREAM_LEN {
        return Err(StreamError::TooLarge {
            len: b.len(),
            max: MAX_STREAM_LEN,
        });
    }
    let h = parse_header(b)?;
    let total = h.total_len as usize;
    if b.len() < total {
        return Err(StreamError::Truncated {
            need: total,
            have: b.len(),
        });
    }
    if b.len() > total {
        return Err(StreamError::TooLarge {
            len: b.len(),
            max: total,
        });
    }
    let computed = stream_crc(b);
    if computed != h.crc {
        return Err(StreamError::BadChecksum {
            stored: h.crc,
            computed,
        });
    }
    // Walk the sections once to prove every boundary before handing them out.
    let body = &b[h.header_len as usize..];
    let mut at = 0usize;
    let mut count = 0u32;
    while at < body.len() {
        if body.len() - at < SECTION_HEADER_LEN {
            return Err(StreamError::Malformed {
                field: "section header",
                value: (body.len() - at) as u64,
                expected: SECTION_HEADER_LEN as u64,
            });
        }
        let len = le32(body, at + 4) as usize;
        if len > body.len() - at - SECTION_HEADER_LEN {
            return Err(StreamError::Malformed {
                field: "section length",
                value: len as u64,
                expected: (body.len() - at - SECTION_HEADER_LEN) as u64,
            });
        }
        at += SECTION_HEADER_LEN + len;
        count += 1;
    }
    if count != u32::from(h.section_count) {
        return Err(StreamError::Malformed {
            field: "section_count",
            value: u64::from(h.section_count),
            expected: u64::from(count),
        });
    }
    Ok((h, Sections { rest: body }))
}

/// What a destination device can accept.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeviceCaps {
    /// Its family.
    pub family: Family,
    /// Its PCI vendor.
    pub vendor: u16,
    /// Its PCI device.
    pub device: u16,
    /// Its PCI revision: a stream from another revision is refused.
    pub revision: u8,
    /// Queue pairs it has.
    pub max_queue_pairs: u16,
    /// Feature bits it supports.
    pub features: u32,
}

/// Whether the device described by `caps` can take a stream with header `h`.
///
/// Same family and vendor are required; the device ID may differ within the
/// family only when the register maps are equal, which v1 does not claim, so
/// it must match too, and so must the PCI revision (a revision may change
/// what the registers mean; v1 claims no two revisions equal).
pub fn check_compat(h: &Header, caps: &DeviceCaps) -> Result<(), StreamError> {
    if h.family != caps.family as u8 {
        return Err(StreamError::WrongDevice {
            field: "family",
            stream: u32::from(h.family),
            device: u32::from(caps.family as u8),
        });
    }
    if h.vendor != caps.vendor {
        return Err(StreamError::WrongDevice {
            field: "vendor",
            stream: u32::from(h.vendor),
            device: u32::from(caps.vendor),
        });
    }
    if h.device != caps.device {
        return Err(StreamError::WrongDevice {
            field: "device",
            stream: u32::from(h.device),
            device: u32::from(caps.device),
        });
    }
    if h.revision != caps.revision {
        return Err(StreamError::WrongDevice {
            field: "revision",
            stream: u32::from(h.revision),
            device: u32::from(caps.revision),
        });
    }
    if h.queue_pairs > caps.max_queue_pairs {
        return Err(StreamError::TooManyQueues {
            stream: h.queue_pairs,
            device: caps.max_queue_pairs,
        });
    }
    let missing = h.features & !caps.features;
    if missing != 0 {
        return Err(StreamError::MissingFeatures { missing });
    }
    Ok(())
}
