// SPDX-License-Identifier: GPL-2.0

//! BAR0 register maps of the VF families, from the PF and VF drivers
//! (`igbvf/regs.h`, `ixgbevf/regs.h`, `ixgbevf/mbx.h`) and QEMU's igb model.
//!
//! One [`RegMap`] per family; offsets are bytes into BAR0. Queue registers
//! are `base + stride * queue`, declared in `queue_regs.rs`.

use super::bits::SrrctlLayout;
use super::ids::Family;

pub use super::bits::DCTL_ENABLE;
pub use super::queue_regs::{RxQueueRegs, TxQueueRegs};

/// Most queue pairs any family has (array sizes).
pub const MAX_QUEUES: usize = 8;

/// BAR0 offsets of one VF family.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RegMap {
    /// Device control.
    pub ctrl: u32,
    /// Device status (bit 1: link up).
    pub status: u32,
    /// Mailbox memory (16 dwords).
    pub mbx_mem: u32,
    /// VF-to-PF mailbox control: read-to-clear status bits, never read on save.
    pub mbx_ctrl: u32,
    /// Extended interrupt cause read (read-to-clear: never read on save).
    pub eicr: u32,
    /// Extended interrupt cause set.
    pub eics: u32,
    /// Extended interrupt mask set / read.
    pub eims: u32,
    /// Extended interrupt mask clear.
    pub eimc: u32,
    /// Extended interrupt auto clear.
    pub eiac: u32,
    /// Extended interrupt auto mask.
    pub eiam: u32,
    /// Interrupt throttle of vector 0; vector `n` is at `eitr + 4 * n`.
    pub eitr: u32,
    /// Interrupt vector allocation for queue causes.
    pub ivar0: u32,
    /// Interrupt vector allocation for the mailbox ("other") cause.
    pub ivar_misc: u32,
    /// RX queue 0 registers.
    pub rx: RxQueueRegs,
    /// TX queue 0 registers.
    pub tx: TxQueueRegs,
    /// Distance between the registers of consecutive queues.
    pub queue_stride: u32,
    /// Queue pairs a VF of this family can have.
    pub max_queue_pairs: u32,
    /// IVAR registers (each maps two queue pairs' causes to vectors).
    pub ivar_count: u32,
    /// MSI-X vectors of a VF; one EITR and one EIMS bit each.
    pub vectors: u32,
    /// Widths of SRRCTL's buffer size fields.
    pub srrctl: SrrctlLayout,
    /// TXDCTL's software flush bit (self-clearing), written with the
    /// disable so the device writes back the descriptors it completed but
    /// still holds (TXDCTL.WTHRESH batching: ixgbevf runs with 8); 0 where
    /// the family's drivers do not use one. Linux's ixgbe and ixgbevf
    /// disable a TX queue with it (`IXGBE_TXDCTL_SWFLSH`).
    pub tx_flush: u32,
}

/// Offsets of the ring registers RX and TX queues share (queue 0; add
/// `RegMap::queue_stride * n`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct QueueRegs {
    /// Descriptor ring base, low 32 bits.
    pub bal: u32,
    /// Descriptor ring base, high 32 bits.
    pub bah: u32,
    /// Descriptor ring length in bytes.
    pub len: u32,
    /// Head index (written by hardware).
    pub head: u32,
    /// Tail index (written by the driver: a post).
    pub tail: u32,
    /// Queue control ([`super::bits::Dctl`]): enable bit and thresholds.
    pub dctl: u32,
}

impl RxQueueRegs {
    /// The ring registers.
    pub const fn ring(&self) -> QueueRegs {
        QueueRegs {
            bal: self.bal,
            bah: self.bah,
            len: self.len,
            head: self.head,
            tail: self.tail,
            dctl: self.dctl,
        }
    }
}

impl TxQueueRegs {
    /// The ring registers.
    pub const fn ring(&self) -> QueueRegs {
        QueueRegs {
            bal: self.bal,
            bah: self.bah,
            len: self.len,
            head: self.head,
            tail: self.tail,
            dctl: self.dctl,
        }
    }
}

/// Bit 1 of the status register: link up ([`super::bits::Status`]).
pub const STATUS_LINK_UP: u32 = super::bits::Status::LINK_UP;

/// igb family (82576, I350) VF register map.
pub const IGB: RegMap = RegMap {
    ctrl: 0x0000,
    status: 0x0008,
    mbx_mem: 0x0800,
    mbx_ctrl: 0x0c40,
    eicr: 0x1580,
    eics: 0x1520,
    eims: 0x1524,
    eimc: 0x1528,
    eiac: 0x152c,
    eiam: 0x1530,
    eitr: 0x1680,
    ivar0: 0x1700,
    ivar_misc: 0x1740,
    rx: RxQueueRegs::IGB,
    tx: TxQueueRegs::IGB,
    queue_stride: 0x100,
    max_queue_pairs: 2,
    ivar_count: 1,
    vectors: 3,
    srrctl: SrrctlLayout {
        bsize_packet_mask: 0x7f,
        bsize_header_mask: 0xf,
    },
    tx_flush: 0,
};

/// ixgbe family (82599, X540, X550, X550EM) VF register map.
pub const IXGBE: RegMap = RegMap {
    ctrl: 0x0000,
    status: 0x0008,
    mbx_mem: 0x0200,
    mbx_ctrl: 0x02fc,
    eicr: 0x0100,
    eics: 0x0104,
    eims: 0x0108,
    eimc: 0x010c,
    eiac: 0x0110,
    eiam: 0x0114,
    eitr: 0x0820,
    ivar0: 0x0120,
    ivar_misc: 0x0140,
    rx: RxQueueRegs::IXGBE,
    tx: TxQueueRegs::IXGBE,
    queue_stride: 0x40,
    max_queue_pairs: 8,
    ivar_count: 4,
    vectors: 3,
    srrctl: SrrctlLayout {
        bsize_packet_mask: 0x1f,
        bsize_header_mask: 0x3f,
    },
    tx_flush: 1 << 26,
};

/// The register map of `family`.
pub const fn regmap(family: Family) -> &'static RegMap {
    match family {
        Family::Ixgbe => &IXGBE,
        Family::Igb => &IGB,
    }
}

impl RegMap {
    /// Offset of RX register `reg` (taken from [`RegMap::rx`]) for `queue`.
    pub const fn rxq(&self, reg: u32, queue: u32) -> u32 {
        reg + self.queue_stride * queue
    }

    /// Offset of TX register `reg` (taken from [`RegMap::tx`]) for `queue`.
    pub const fn txq(&self, reg: u32, queue: u32) -> u32 {
        reg + self.queue_stride * queue
    }

    /// Mask of every interrupt vector's EIMS/EIMC/EICS bit.
    pub const fn vector_mask(&self) -> u32 {
        (1 << self.vectors) - 1
    }

    /// The 4 KiB BAR0 page that holds the mailbox (trapped for the PF channel).
    pub const fn mailbox_page(&self) -> u32 {
        self.mbx_ctrl / 4096
    }

    /// The 4 KiB BAR0 page that holds the RX tails (trapped for dirty tracking).
    pub const fn rx_tail_page(&self) -> u32 {
        self.rx.tail / 4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_match_the_design() {
        // ixgbe: mailbox on page 0 with the interrupt registers, RX on page 1.
        assert_eq!(IXGBE.mailbox_page(), 0);
        assert_eq!(IXGBE.eims / 4096, 0);
        assert_eq!(IXGBE.rx_tail_page(), 1);
        assert_eq!(IXGBE.rxq(IXGBE.rx.tail, 7), 0x1018 + 7 * 0x40);
        // igb: mailbox page 0, interrupts page 1, RX page 2, TX page 3.
        assert_eq!(IGB.mailbox_page(), 0);
        assert_eq!(IGB.eims / 4096, 1);
        assert_eq!(IGB.rx_tail_page(), 2);
        assert_eq!(IGB.tx.tail / 4096, 3);
        assert_eq!(IGB.rxq(IGB.rx.tail, 1), 0x2918);
    }

    #[test]
    fn queues_stay_on_their_page() {
        for map in [&IGB, &IXGBE] {
            let last = map.max_queue_pairs - 1;
            assert_eq!(map.rxq(map.rx.dctl, last) / 4096, map.rx_tail_page());
            assert_eq!(map.txq(map.tx.dctl, last) / 4096, map.tx.tail / 4096);
        }
    }
}
