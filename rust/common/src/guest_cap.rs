// SPDX-License-Identifier: GPL-2.0

//! The guest-visible migration capability: a PCI Vendor Specific
//! capability (ID 0x09) that the driver shows in the VF's config space as
//! the VFIO user reads it, and that the hardware never sees
//! (Documentation/guest-capability.rst has the layout byte by byte).
//!
//! This file holds its layout, its rendering and parsing, and where it may
//! sit: [`place`] finds a free gap from what vfio knows of the VF's config
//! space, so the same rule is tested here on both families' layouts and
//! used by the module.

/// PCI capability ID of a Vendor Specific capability.
pub const CAP_ID_VNDR: u8 = 0x09;
/// Where the first capability's offset is (`PCI_CAPABILITY_LIST`).
pub const CAP_LIST: usize = 0x34;
/// The end of the standard config space.
pub const STD_CONFIG_LEN: usize = 0x100;
/// Where capabilities may start (after the standard header).
const FIRST_CAP: usize = 0x40;

/// The signature at [`off::SIGNATURE`], telling this capability from any
/// other vendor's.
pub const SIGNATURE: [u8; 4] = *b"IVFM";
/// The layout version: changes only if an existing field changes meaning.
pub const VERSION: u8 = 1;
/// Bytes of this layout version (fields are only ever added at the end).
pub const LEN: usize = 0x18;

/// Byte offsets of the fields inside the capability.
pub mod off {
    /// The capability ID (0x09).
    pub const ID: usize = 0x00;
    /// The next capability's offset (0: the last).
    pub const NEXT: usize = 0x01;
    /// The capability's length in bytes.
    pub const LENGTH: usize = 0x02;
    /// The layout version.
    pub const VERSION: usize = 0x03;
    /// The signature, 4 bytes.
    pub const SIGNATURE: usize = 0x04;
    /// What the device offers ([`super::offers`]).
    pub const OFFERS: usize = 0x08;
    /// What the last resume restored ([`super::restored`]).
    pub const RESTORED: usize = 0x09;
    /// The migration generation, 32-bit little-endian.
    pub const GENERATION: usize = 0x0c;
}

/// Bits of the OFFERS byte.
pub mod offers {
    /// The device can be migrated (VFIO migration).
    pub const MIGRATION: u8 = 1 << 0;
    /// The driver logs the device's DMA (device dirty tracking).
    pub const DEVICE_DIRTY_TRACKING: u8 = 1 << 1;
}

/// Bits of the RESTORED byte: what the destination did when this VF was
/// last resumed from a stream (0 after a reset or a new open).
pub mod restored {
    /// The device's registers (queues, interrupts) were loaded.
    pub const REGISTERS: u8 = 1 << 0;
    /// The VF's own mailbox requests (MAC, VLANs, multicast) were replayed
    /// at the PF: its filters are in place.
    pub const FILTERS: u8 = 1 << 1;
    /// The stream's administrator settings were applied at the PF.
    pub const ADMIN: u8 = 1 << 2;
}

/// What the capability says.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CapView {
    /// [`offers`] bits.
    pub offers: u8,
    /// [`restored`] bits.
    pub restored: u8,
    /// Changes each time the VF is resumed from a stream.
    pub generation: u32,
}

/// The capability's bytes (its next pointer is 0: it is the last).
pub fn render(v: &CapView) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[off::ID] = CAP_ID_VNDR;
    b[off::LENGTH] = LEN as u8;
    b[off::VERSION] = VERSION;
    b[off::SIGNATURE..off::SIGNATURE + 4].copy_from_slice(&SIGNATURE);
    b[off::OFFERS] = v.offers;
    b[off::RESTORED] = v.restored;
    b[off::GENERATION..off::GENERATION + 4].copy_from_slice(&v.generation.to_le_bytes());
    b
}

/// Why bytes are not this capability.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Another capability ID.
    NotVendor(u8),
    /// A vendor capability of someone else (or a damaged one).
    Signature([u8; 4]),
    /// A layout this reader does not know.
    Version(u8),
    /// Shorter than this version's fields.
    Short(usize),
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::NotVendor(id) => {
                write!(f, "capability ID {id:#04x}, not {CAP_ID_VNDR:#04x}")
            }
            ParseError::Signature(s) => write!(f, "signature {s:02x?}, not {SIGNATURE:02x?}"),
            ParseError::Version(v) => write!(f, "layout version {v}, this reader knows {VERSION}"),
            ParseError::Short(n) => write!(f, "length {n}, version {VERSION} needs {LEN}"),
        }
    }
}

/// Reads the capability from its bytes (at least [`LEN`] of them, from its
/// ID byte on). A longer capability is a later layout of the same version:
/// the fields known here are read, the rest ignored.
pub fn parse(b: &[u8]) -> Result<CapView, ParseError> {
    if b.len() <= off::LENGTH {
        return Err(ParseError::Short(b.len()));
    }
    if b[off::ID] != CAP_ID_VNDR {
        return Err(ParseError::NotVendor(b[off::ID]));
    }
    let len = usize::from(b[off::LENGTH]);
    if len < LEN || b.len() < LEN {
        return Err(ParseError::Short(len.min(b.len())));
    }
    let mut sig = [0u8; 4];
    sig.copy_from_slice(&b[off::SIGNATURE..off::SIGNATURE + 4]);
    if sig != SIGNATURE {
        return Err(ParseError::Signature(sig));
    }
    if b[off::VERSION] != VERSION {
        return Err(ParseError::Version(b[off::VERSION]));
    }
    let mut g = [0u8; 4];
    g.copy_from_slice(&b[off::GENERATION..off::GENERATION + 4]);
    Ok(CapView {
        offers: b[off::OFFERS],
        restored: b[off::RESTORED],
        generation: u32::from_le_bytes(g),
    })
}

/// Where the capability sits, and the byte that links it into the list.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Its offset in config space.
    pub at: u8,
    /// The next-pointer byte of the list's last capability, which the user
    /// reads as [`Placement::at`].
    pub link: u8,
}

impl Placement {
    /// What the user reads at config-space offset `pos`, if it is ours:
    /// a capability byte of `cap`, or the link.
    pub fn byte_at(&self, cap: &[u8; LEN], pos: usize) -> Option<u8> {
        let at = usize::from(self.at);
        if pos >= at && pos < at + LEN {
            Some(cap[pos - at])
        } else if pos == usize::from(self.link) {
            Some(self.at)
        } else {
            None
        }
    }

    /// Whether config-space offset `pos` is one of the capability's bytes.
    pub fn covers(&self, pos: usize) -> bool {
        let at = usize::from(self.at);
        pos >= at && pos < at + LEN
    }
}

/// Why no place was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// The VF shows no capability list to link into.
    NoList,
    /// The list does not end within the standard config space.
    BadList(u8),
    /// No dword-aligned run of [`LEN`] free bytes.
    NoRoom,
}

/// Finds the capability's place in a VF's standard config space.
///
/// `user` is the config space as the VFIO user sees it (vfio's virtualised
/// view: capability IDs and next pointers, hidden capabilities unlinked);
/// `assigned[i]` says whether vfio gives byte `i` to the header or to a
/// capability it knows; `hw` is what the device returns at each byte. A
/// byte is free when vfio assigns it to nothing and the device returns 0
/// there: the device implements no register at that byte that a guest
/// could rely on. The place is the highest dword-aligned offset with
/// [`LEN`] free bytes (the top of the standard space, past the last real
/// capability on both families); the link is the next pointer of the last
/// capability in the user's list.
pub fn place(
    user: &[u8; STD_CONFIG_LEN],
    assigned: &[bool; STD_CONFIG_LEN],
    hw: &[u8; STD_CONFIG_LEN],
) -> Result<Placement, PlaceError> {
    let mut pos = usize::from(user[CAP_LIST] & !3);
    if pos == 0 {
        return Err(PlaceError::NoList);
    }
    // A list has at most (256 - 64) / 4 entries; a longer walk is a loop.
    let mut link = None;
    for _ in 0..(STD_CONFIG_LEN - FIRST_CAP) / 4 {
        if !(FIRST_CAP..STD_CONFIG_LEN - 1).contains(&pos) {
            return Err(PlaceError::BadList(pos as u8));
        }
        let next = usize::from(user[pos + 1] & !3);
        if next == 0 {
            link = Some(pos + 1);
            break;
        }
        pos = next;
    }
    let link = link.ok_or(PlaceError::BadList(pos as u8))?;
    let free = |i: usize| !assigned[i] && hw[i] == 0;
    let at = (FIRST_CAP / 4..=(STD_CONFIG_LEN - LEN) / 4)
        .rev()
        .map(|dword| dword * 4)
        .find(|&at| (at..at + LEN).all(free))
        .ok_or(PlaceError::NoRoom)?;
    Ok(Placement {
        at: at as u8,
        link: link as u8,
    })
}
