// SPDX-License-Identifier: GPL-2.0

//! The registers of one RX and one TX queue, declared once: each line
//! gives a register's name, its offset (queue 0) in each family and, where
//! the load writes it out of line, its rank. From that list come the offset
//! tables of the register maps ([`RxQueueRegs`], [`TxQueueRegs`]), the saved
//! values ([`RxQueue`], [`TxQueue`]), the HAL's save and load sequences
//! ([`RxQueueRegs::offsets`], `LOAD_ORDER`) and the stream's QUEUES section
//! (`words`, in declaration order). Saving one more register is one line
//! here (and, since it changes the QUEUES section, a stream version:
//! Documentation/stream-format.rst).

/// Declares one queue's registers: `$vals` (the values a save holds, in
/// stream order) and `$offs` (their offsets, one constant per family).
/// `load N` ranks a register's write at load (default 0; the load writes
/// by rank, then in declaration order).
macro_rules! queue_registers {
    (
        $(#[$vdoc:meta])* values $vals:ident;
        $(#[$odoc:meta])* offsets $offs:ident;
        $(
            $(#[$fdoc:meta])*
            $name:ident: igb $igb:literal, ixgbe $ixgbe:literal $(, load $rank:literal)?;
        )+
    ) => {
        $(#[$vdoc])*
        #[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
        pub struct $vals {
            $($(#[$fdoc])* pub $name: u32,)+
        }

        $(#[$odoc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub struct $offs {
            $($(#[$fdoc])* pub $name: u32,)+
        }

        impl $vals {
            /// Registers per queue.
            pub const LEN: usize = [$(stringify!($name)),+].len();
            /// Their names, in stream order.
            pub const NAMES: [&'static str; Self::LEN] = [$(stringify!($name)),+];

            /// The values in stream order.
            pub const fn words(&self) -> [u32; Self::LEN] {
                [$(self.$name),+]
            }

            /// The values from `w`, in stream order.
            pub const fn from_words(w: [u32; Self::LEN]) -> Self {
                let mut i = 0;
                $(let $name = w[i]; i += 1;)+
                let _ = i;
                Self { $($name),+ }
            }
        }

        impl $offs {
            /// The igb family's offsets.
            pub const IGB: Self = Self { $($name: $igb),+ };
            /// The ixgbe family's offsets.
            pub const IXGBE: Self = Self { $($name: $ixgbe),+ };

            /// The offsets in stream order (what a save reads).
            pub const fn offsets(&self) -> [u32; $vals::LEN] {
                [$(self.$name),+]
            }

            /// Indexes into [`Self::offsets`] in the order a load writes.
            pub const LOAD_ORDER: [usize; $vals::LEN] =
                load_order([$(0 $(+ $rank)?),+]);
        }
    };
}

/// Indexes `0..N` sorted by `rank`, stably (an insertion sort: const).
const fn load_order<const N: usize>(rank: [u32; N]) -> [usize; N] {
    let mut order = [0usize; N];
    let mut i = 0;
    while i < N {
        order[i] = i;
        i += 1;
    }
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && rank[order[j - 1]] > rank[order[j]] {
            let t = order[j - 1];
            order[j - 1] = order[j];
            order[j] = t;
            j -= 1;
        }
        i += 1;
    }
    order
}

queue_registers! {
    /// One RX queue's registers as a save holds them.
    values RxQueue;
    /// Offsets of one RX queue's registers (queue 0; add
    /// `RegMap::queue_stride * n`).
    offsets RxQueueRegs;
    /// Descriptor ring base, low 32 bits.
    bal: igb 0x2800, ixgbe 0x1000;
    /// Descriptor ring base, high 32 bits.
    bah: igb 0x2804, ixgbe 0x1004;
    /// Descriptor ring length in bytes.
    len: igb 0x2808, ixgbe 0x1008;
    /// SRRCTL ([`super::bits::Srrctl`]): buffer sizes and descriptor type.
    srrctl: igb 0x280c, ixgbe 0x1014;
    /// Head index (next descriptor the device fills).
    head: igb 0x2810, ixgbe 0x1010;
    /// Tail index (last descriptor posted + 1).
    tail: igb 0x2818, ixgbe 0x1018;
    /// RXDCTL ([`super::bits::Dctl`]), with the enable bit as the guest had
    /// it; loaded last, disabled (the resume enables the queue).
    dctl: igb 0x2828, ixgbe 0x1028, load 2;
}

queue_registers! {
    /// One TX queue's registers as a save holds them.
    values TxQueue;
    /// Offsets of one TX queue's registers (queue 0; add
    /// `RegMap::queue_stride * n`).
    offsets TxQueueRegs;
    /// Descriptor ring base, low 32 bits.
    bal: igb 0x3800, ixgbe 0x2000;
    /// Descriptor ring base, high 32 bits.
    bah: igb 0x3804, ixgbe 0x2004;
    /// Descriptor ring length in bytes.
    len: igb 0x3808, ixgbe 0x2008;
    /// Head index (next descriptor the device sends).
    head: igb 0x3810, ixgbe 0x2010;
    /// Tail index.
    tail: igb 0x3818, ixgbe 0x2018;
    /// TXDCTL ([`super::bits::Dctl`]), with the enable bit as the guest had
    /// it; loaded last, disabled.
    dctl: igb 0x3828, ixgbe 0x2028, load 2;
    /// TDWBAL ([`super::bits::Tdwbal`]): head write-back address, low (bit 0
    /// enables the write-back: loaded after the high half).
    wbal: igb 0x3838, ixgbe 0x2038, load 1;
    /// TDWBAH: head write-back address, high.
    wbah: igb 0x383c, ixgbe 0x203c;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_writes_the_enables_last_and_the_write_back_high_half_first() {
        let rx = RxQueue::NAMES;
        let rx_load = RxQueueRegs::LOAD_ORDER.map(|i| rx[i]);
        assert_eq!(
            rx_load,
            ["bal", "bah", "len", "srrctl", "head", "tail", "dctl"]
        );
        let tx = TxQueue::NAMES;
        let tx_load = TxQueueRegs::LOAD_ORDER.map(|i| tx[i]);
        assert_eq!(
            tx_load,
            ["bal", "bah", "len", "head", "tail", "wbah", "wbal", "dctl"]
        );
    }

    #[test]
    fn words_round_trip_in_stream_order() {
        let t = TxQueue::from_words([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!((t.bal, t.dctl, t.wbal, t.wbah), (1, 6, 7, 8));
        assert_eq!(t.words(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(RxQueue::LEN + TxQueue::LEN, 15);
    }
}
