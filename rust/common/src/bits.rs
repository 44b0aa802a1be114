// SPDX-License-Identifier: GPL-2.0

//! Register fields and descriptor layouts of the VF families, typed once.
//!
//! Offsets live in [`super::regs`]; this file owns what the bits inside a
//! register or a descriptor mean (igbvf/ixgbevf `regs.h`, `vf.h`, and the
//! 82576/82599 datasheets). Code elsewhere reads `Srrctl(v).desc_type()`,
//! never `(v >> 25) & 7`. Each wrapper is a plain `u32` (or the 16 bytes of
//! a descriptor) with `const fn` accessors, so nothing here costs a read or
//! a write: the MMIO sequences stay exactly what they were.

/// CTRL: device control.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Ctrl(pub u32);

impl Ctrl {
    /// RST: the VF's software reset of its queues and interrupts, which a
    /// VF driver sets before the mailbox RESET (self-clearing).
    pub const RST: u32 = 1 << 26;

    /// Whether a write of this value asks for the reset.
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }

    /// This value with the reset asked for.
    pub const fn with_rst(self) -> Ctrl {
        Ctrl(self.0 | Self::RST)
    }
}

/// STATUS: device status.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    /// LU: link up.
    pub const LINK_UP: u32 = 1 << 1;

    /// Whether the link is up.
    pub const fn link_up(self) -> bool {
        self.0 & Self::LINK_UP != 0
    }
}

/// A queue's enable bit, as written or wanted (no bare `bool`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Enable {
    /// The queue is (to be) stopped.
    Off,
    /// The queue is (to be) running.
    On,
}

impl Enable {
    /// `On` for `true`.
    pub const fn from_bool(on: bool) -> Enable {
        if on {
            Enable::On
        } else {
            Enable::Off
        }
    }

    /// 1 for `On`, 0 for `Off` (for messages).
    pub const fn bit(self) -> u8 {
        match self {
            Enable::Off => 0,
            Enable::On => 1,
        }
    }
}

/// RXDCTL or TXDCTL: queue control (same enable bit in both families).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Dctl(pub u32);

impl Dctl {
    /// ENABLE: the queue runs.
    pub const ENABLE: u32 = 1 << 25;

    /// Whether the queue is enabled.
    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    /// The enable bit as an [`Enable`].
    pub const fn enable(self) -> Enable {
        Enable::from_bool(self.enabled())
    }

    /// This value with the enable bit set to `e`, the rest kept.
    pub const fn with_enable(self, e: Enable) -> Dctl {
        match e {
            Enable::On => Dctl(self.0 | Self::ENABLE),
            Enable::Off => Dctl(self.0 & !Self::ENABLE),
        }
    }
}

/// Queue enable bit of RXDCTL and TXDCTL, in both families ([`Dctl::ENABLE`]).
pub const DCTL_ENABLE: u32 = Dctl::ENABLE;

/// SRRCTL's descriptor type (DESCTYPE, bits 25..28).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DescType {
    /// Legacy descriptors.
    Legacy,
    /// Advanced, one buffer.
    AdvOneBuf,
    /// Advanced, header split.
    AdvHeaderSplit,
    /// Advanced, header replication.
    AdvHeaderReplication,
    /// Advanced, header replication of large packets only.
    AdvHeaderReplicationLarge,
    /// Advanced, header split always.
    AdvHeaderSplitAlways,
    /// A reserved encoding (6 or 7): advanced as far as the tracker cares.
    Reserved(u8),
}

impl DescType {
    /// The field's encoding.
    pub const fn code(self) -> u32 {
        match self {
            DescType::Legacy => 0,
            DescType::AdvOneBuf => 1,
            DescType::AdvHeaderSplit => 2,
            DescType::AdvHeaderReplication => 3,
            DescType::AdvHeaderReplicationLarge => 4,
            DescType::AdvHeaderSplitAlways => 5,
            DescType::Reserved(c) => c as u32 & 7,
        }
    }

    /// Whether descriptors of this type carry a header buffer (all but
    /// legacy and advanced one-buffer).
    pub const fn has_header_buffer(self) -> bool {
        !matches!(self, DescType::Legacy | DescType::AdvOneBuf)
    }
}

/// How wide SRRCTL's buffer size fields are in one family.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SrrctlLayout {
    /// BSIZEPACKET (from bit 0, in KiB units).
    pub bsize_packet_mask: u32,
    /// BSIZEHEADER (from bit 8, in 64-byte units).
    pub bsize_header_mask: u32,
}

/// SRRCTL: an RX queue's split and replication control.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Srrctl(pub u32);

impl Srrctl {
    const BSIZEHEADER_SHIFT: u32 = 8;
    const DESCTYPE_SHIFT: u32 = 25;
    const DESCTYPE_MASK: u32 = 7;
    /// DROP_EN: drop packets when no descriptor is posted.
    pub const DROP_EN: u32 = 1 << 31;

    /// The descriptor format of the queue.
    pub const fn desc_type(self) -> DescType {
        match (self.0 >> Self::DESCTYPE_SHIFT) & Self::DESCTYPE_MASK {
            0 => DescType::Legacy,
            1 => DescType::AdvOneBuf,
            2 => DescType::AdvHeaderSplit,
            3 => DescType::AdvHeaderReplication,
            4 => DescType::AdvHeaderReplicationLarge,
            5 => DescType::AdvHeaderSplitAlways,
            c => DescType::Reserved(c as u8),
        }
    }

    /// Packet buffer size in bytes; 0 when the field is 0 (the PF's
    /// RCTL.BSIZE applies).
    pub const fn bsize_packet(self, l: SrrctlLayout) -> u64 {
        ((self.0 & l.bsize_packet_mask) as u64) << 10
    }

    /// Header buffer size in bytes; 0 when the field is 0.
    pub const fn bsize_header(self, l: SrrctlLayout) -> u64 {
        (((self.0 >> Self::BSIZEHEADER_SHIFT) & l.bsize_header_mask) as u64) << 6
    }

    /// A value of descriptor type `t` with packet buffers of `bytes` (a
    /// multiple of 1 KiB), dropping when no descriptor is posted if `drop`.
    pub const fn new(t: DescType, packet_bytes: u32, drop: RxDrop) -> Srrctl {
        let d = match drop {
            RxDrop::WhenFull => Self::DROP_EN,
            RxDrop::Never => 0,
        };
        Srrctl((t.code() << Self::DESCTYPE_SHIFT) | (packet_bytes >> 10) | d)
    }
}

/// SRRCTL.DROP_EN, as [`Srrctl::new`] takes it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RxDrop {
    /// Drop packets while no descriptor is posted.
    WhenFull,
    /// Hold them.
    Never,
}

/// TDWBAL: TX head write-back address, low (bit 0 enables, the address is
/// dword aligned).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Tdwbal(pub u32);

impl Tdwbal {
    /// Head write-back enable.
    pub const ENABLE: u32 = 1 << 0;
    /// Bits of the address (the low two are flags).
    const ADDR_MASK: u32 = !3;

    /// Whether head write-back is on.
    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    /// The write-back IOVA with TDWBAH `high`, when enabled (IOVA 0 included).
    pub const fn head_wb(self, high: u32) -> Option<u64> {
        if self.enabled() {
            Some(((high as u64) << 32) | (self.0 & Self::ADDR_MASK) as u64)
        } else {
            None
        }
    }
}

/// A 64-bit IOVA split into the low and high halves of a BAL/BAH pair.
pub const fn split_u64(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

/// The IOVA of a BAL/BAH pair.
pub const fn join_u64(lo: u32, hi: u32) -> u64 {
    ((hi as u64) << 32) | lo as u64
}

/// Bytes of one descriptor (both families, RX and TX).
pub const DESC_LEN: usize = 16;

/// An RX descriptor as 16 bytes of guest memory: the two quadwords.
///
/// Read format (what the guest posts): packet buffer address, then the
/// header buffer address (advanced split types) or zero. Write-back: the
/// device overwrites both; the DD bit is where [`RxDesc::done`] looks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RxDesc {
    lo: u64,
    hi: u64,
}

impl RxDesc {
    /// Legacy write-back: DD is bit 0 of the status byte (byte 12).
    const LEGACY_DD: u64 = 1 << 32;
    /// Advanced write-back: DD is bit 0 of `status_error` (bytes 8..12).
    const ADV_DD: u64 = 1;

    /// The descriptor in `d` (shorter input reads as zeros).
    pub fn from_bytes(d: &[u8]) -> RxDesc {
        RxDesc {
            lo: le64(d, 0),
            hi: le64(d, 8),
        }
    }

    /// A read descriptor: packet buffer at `pkt`, header buffer at `hdr`.
    pub const fn read(pkt: u64, hdr: u64) -> RxDesc {
        RxDesc { lo: pkt, hi: hdr }
    }

    /// Its 16 bytes.
    pub const fn to_bytes(self) -> [u8; DESC_LEN] {
        let (a, b) = (self.lo.to_le_bytes(), self.hi.to_le_bytes());
        let mut out = [0u8; DESC_LEN];
        let mut i = 0;
        while i < 8 {
            out[i] = a[i];
            out[8 + i] = b[i];
            i += 1;
        }
        out
    }

    /// Read format: the packet buffer address.
    pub const fn pkt_addr(self) -> u64 {
        self.lo
    }

    /// Read format: the header buffer address (split types only).
    pub const fn hdr_addr(self) -> u64 {
        self.hi
    }

    /// Whether it looks written back (DD set) in format `t`.
    pub const fn done(self, t: DescType) -> bool {
        let dd = match t {
            DescType::Legacy => Self::LEGACY_DD,
            _ => Self::ADV_DD,
        };
        self.hi & dd != 0
    }

    /// Advanced write-back: the packet length (bytes 12..14).
    pub const fn adv_length(self) -> u16 {
        (self.hi >> 32) as u16
    }
}

/// An advanced TX data descriptor (read format) and its write-back status.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AdvTxDesc {
    /// Buffer address.
    pub addr: u64,
    /// cmd_type_len: length, DTYP, DCMD.
    pub cmd_type_len: u32,
    /// olinfo_status: PAYLEN (read), DD (write-back).
    pub olinfo_status: u32,
}

impl AdvTxDesc {
    /// DTYP: advanced data descriptor.
    const DTYP_DATA: u32 = 0x3 << 20;
    /// DCMD.EOP: end of packet.
    const DCMD_EOP: u32 = 1 << 24;
    /// DCMD.IFCS: insert the FCS.
    const DCMD_IFCS: u32 = 1 << 25;
    /// DCMD.RS: report status (write DD back).
    const DCMD_RS: u32 = 1 << 27;
    /// DCMD.DEXT: advanced format.
    const DCMD_DEXT: u32 = 1 << 29;
    /// Length field of cmd_type_len.
    const LEN_MASK: u32 = 0xffff;
    /// PAYLEN's place in olinfo_status.
    const PAYLEN_SHIFT: u32 = 14;
    /// Write-back: descriptor done.
    const STA_DD: u32 = 1 << 0;

    /// One whole frame of `len` bytes at `addr`, FCS added, DD reported.
    pub const fn frame(addr: u64, len: u32) -> AdvTxDesc {
        AdvTxDesc {
            addr,
            cmd_type_len: Self::DTYP_DATA
                | Self::DCMD_DEXT
                | Self::DCMD_IFCS
                | Self::DCMD_EOP
                | Self::DCMD_RS
                | (len & Self::LEN_MASK),
            olinfo_status: len << Self::PAYLEN_SHIFT,
        }
    }

    /// Its 16 bytes.
    pub fn to_bytes(self) -> [u8; DESC_LEN] {
        let mut out = [0u8; DESC_LEN];
        out[0..8].copy_from_slice(&self.addr.to_le_bytes());
        out[8..12].copy_from_slice(&self.cmd_type_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.olinfo_status.to_le_bytes());
        out
    }

    /// Whether descriptor bytes `d` were written back (DD).
    pub fn done(d: &[u8]) -> bool {
        (le64(d, 8) >> 32) as u32 & Self::STA_DD != 0
    }
}

/// The VLAN ID (802.1Q VID, 12 bits) of `v`: a mailbox SET_VLAN word, the
/// PF's `ifla_vf_info.vlan`.
pub const fn vlan_id(v: u32) -> u16 {
    (v & 0xfff) as u16
}

/// igb PF's VLAN pool filter (VLVF[n]): a VLAN ID and the pools (one bit
/// per VF, from bit 12) that receive it. The PF's, read by the samples to
/// see what the PF holds for a VF.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IgbVlvf(pub u32);

impl IgbVlvf {
    /// Offset of VLVF[0] in the igb PF's BAR0 (32 entries).
    pub const OFFSET: u32 = 0x5d00;
    /// Entries.
    pub const COUNT: usize = 32;
    const VALID: u32 = 1 << 31;
    const POOL_SHIFT: u32 = 12;

    /// The entry is in use.
    pub const fn valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    /// Its VLAN ID.
    pub const fn vid(self) -> u16 {
        vlan_id(self.0)
    }

    /// Whether pool `vf` receives the VLAN.
    pub const fn has_pool(self, vf: u32) -> bool {
        vf < 8 && self.0 & (1 << (Self::POOL_SHIFT + vf)) != 0
    }
}

/// A receive-address entry of the igb PF (RAL, RAH): a unicast MAC the
/// NIC's switch delivers to the pools set in it. The PF's own and the VFs'
/// primary MACs sit at the top (VF `n` at entry 23 - n), extra filters below.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IgbRar {
    /// RAL: the address's first four bytes.
    pub low: u32,
    /// RAH: its last two, the pools and the valid bit.
    pub high: u32,
}

impl IgbRar {
    /// Entries (82576).
    pub const COUNT: usize = 24;
    const VALID: u32 = 1 << 31;
    const POOL_SHIFT: u32 = 18;

    /// Offset of RAL of entry `n` in the PF's BAR0 (RAH follows at +4).
    pub const fn offset(n: usize) -> u32 {
        if n < 16 {
            0x5400 + 8 * n as u32
        } else {
            0x54e0 + 8 * (n as u32 - 16)
        }
    }

    /// The entry is in use.
    pub const fn valid(self) -> bool {
        self.high & Self::VALID != 0
    }

    /// Its address.
    pub const fn mac(self) -> [u8; 6] {
        let l = self.low.to_le_bytes();
        let h = self.high.to_le_bytes();
        [l[0], l[1], l[2], l[3], h[0], h[1]]
    }

    /// Whether pool `vf` receives the address.
    pub const fn has_pool(self, vf: u32) -> bool {
        vf < 8 && self.high & (1 << (Self::POOL_SHIFT + vf)) != 0
    }
}

/// The priority (802.1p PCP, 3 bits) of `v`: the PF's `ifla_vf_info.qos`.
pub const fn vlan_priority(v: u32) -> u8 {
    (v & 7) as u8
}

/// The 12-bit multicast table (MTA) hash of `addr` with the filter type
/// the VF drivers use (igbvf: bits 36..48 of the address).
pub const fn mta_hash(addr: [u8; 6]) -> u16 {
    ((addr[4] as u16 >> 4) | ((addr[5] as u16) << 4)) & 0xfff
}

fn le64(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = d.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srrctl_fields() {
        let igb = SrrctlLayout {
            bsize_packet_mask: 0x7f,
            bsize_header_mask: 0xf,
        };
        // The ivf-guest value: advanced one-buffer, 2 KiB, drop enable.
        let s = Srrctl::new(DescType::AdvOneBuf, 2048, RxDrop::WhenFull);
        assert_eq!(s.0, 0x0200_0000 | 2 | 0x8000_0000);
        assert_eq!(s.desc_type(), DescType::AdvOneBuf);
        assert_eq!(s.bsize_packet(igb), 2048);
        assert_eq!(Srrctl(0x0a00_0402).bsize_header(igb), 4 * 64);
        assert_eq!(
            Srrctl(0x0a00_0402).desc_type(),
            DescType::AdvHeaderSplitAlways
        );
        assert!(Srrctl(7 << 25).desc_type().has_header_buffer());
    }

    #[test]
    fn descriptors() {
        let d = RxDesc::read(0x1000, 0x2000);
        assert_eq!(RxDesc::from_bytes(&d.to_bytes()), d);
        assert!(!d.done(DescType::AdvOneBuf));
        assert!(RxDesc::read(0, 1).done(DescType::AdvOneBuf));
        assert!(!RxDesc::read(0, 1).done(DescType::Legacy));
        assert!(RxDesc::read(0, 1 << 32).done(DescType::Legacy));
        let t = AdvTxDesc::frame(0x1000_0000, 60);
        assert_eq!(
            t.cmd_type_len,
            0x0030_0000 | 0x2000_0000 | 0x0200_0000 | 0x0100_0000 | 0x0800_0000 | 60
        );
        assert_eq!(t.olinfo_status, 60 << 14);
        assert!(!AdvTxDesc::done(&t.to_bytes()));
        assert_eq!(Tdwbal(0x1235).head_wb(1), Some(0x1_0000_1234));
        assert_eq!(Tdwbal(0x1234).head_wb(1), None);
        assert!(Ctrl(0).with_rst().rst());
        assert_eq!(Dctl(0x20).with_enable(Enable::On).0, 0x20 | 1 << 25);
    }
}
