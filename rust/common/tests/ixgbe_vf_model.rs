// SPDX-License-Identifier: GPL-2.0

//! The HAL's sequences against a register-level model of an 82599 VF:
//! enable handshakes that take several reads, heads writable only while the
//! queue is disabled, TX that drains as the device "sends", read-to-clear
//! EICR and mailbox bits, and counters for every access.

#[path = "../../../tools/ivf-bench/src/model.rs"]
mod model;

use ivf_common::hal::{self, DeviceState, HalError, POLL_LIMIT};
use ivf_common::ids::Family;
use ivf_common::regs::{RegMap, DCTL_ENABLE, IXGBE};
use model::VfModel;

const M: &RegMap = &IXGBE;
use ivf_common::state::{
    decode_frame, header_for, state_frame_len, write_state_frame, MAX_FRAME_LEN,
};

/// A VF in use: two queue pairs running, interrupts configured.
fn running_vf() -> VfModel {
    let mut m = VfModel::new(M);
    for q in 0..2 {
        m.set(M.rxq(M.rx.bal, q), 0x1000_0000 + q * 0x1000);
        m.set(M.rxq(M.rx.bah, q), 0x1);
        m.set(M.rxq(M.rx.len, q), 4096);
        m.set(M.rxq(M.rx.srrctl, q), 0x0200_0002);
        m.set(M.rxq(M.rx.head, q), 17 + q);
        m.set(M.rxq(M.rx.tail, q), 200 + q);
        m.set(M.rxq(M.rx.dctl, q), DCTL_ENABLE | 0x20);
        m.set(M.txq(M.tx.bal, q), 0x2000_0000 + q * 0x1000);
        m.set(M.txq(M.tx.len, q), 4096);
        m.set(M.txq(M.tx.head, q), 5);
        m.set(M.txq(M.tx.tail, q), 9 + q); // packets still to send
        m.set(M.txq(M.tx.dctl, q), DCTL_ENABLE);
        m.set(M.txq(M.tx.wbal, q), 0x3000_0001);
    }
    m.set(M.eims, 0b101);
    m.set(M.eiac, 0b011);
    m.set(M.eiam, 0b001);
    m.set(M.ivar0, 0x8180_8081);
    m.set(M.ivar_misc, 0x82);
    m.set(M.eitr, 0x1f0);
    m.set(M.eicr, 0b010); // a pending cause the HAL must not clear
    m.set(M.mbx_ctrl, 0x30); // PFSTS|PFACK, the guest's to read
    m
}

fn full_cycle(src: &mut VfModel) -> (DeviceState, VfModel) {
    let rec = hal::quiesce(src, M).expect("quiesce");
    let saved = hal::save(src, M, &rec);
    let mut dst = VfModel::new(M);
    hal::load(&mut dst, M, &saved).expect("load");
    hal::resume(&mut dst, M, &saved.record()).expect("resume");
    (saved, dst)
}

#[test]
fn quiesce_drains_tx_and_disables_everything() {
    let mut m = running_vf();
    let rec = hal::quiesce(&mut m, M).unwrap();
    assert_eq!(rec.eims, 0b101);
    assert_eq!((rec.rx_enabled, rec.tx_enabled), (0b11, 0b11));
    for q in 0..2 {
        assert_eq!(
            m.regs[&M.txq(M.tx.head, q)],
            m.regs[&M.txq(M.tx.tail, q)],
            "TX{q} drained"
        );
        assert_eq!(m.regs[&M.rxq(M.rx.dctl, q)] & DCTL_ENABLE, 0, "RX{q} off");
        assert_eq!(m.regs[&M.txq(M.tx.dctl, q)] & DCTL_ENABLE, 0, "TX{q} off");
    }
    assert_eq!(
        m.packets_sent,
        4 + 5,
        "every posted packet went out before the stop"
    );
    assert_eq!(m.regs[&M.eims], 0, "all vectors masked");
    assert!(
        m.forbidden_reads.is_empty(),
        "read EICR/mailbox: {:x?}",
        m.forbidden_reads
    );
}

#[test]
fn save_load_resume_reproduces_the_device() {
    let mut src = running_vf();
    let (saved, dst) = full_cycle(&mut src);
    for q in 0..2u32 {
        for off in [
            M.rx.bal,
            M.rx.bah,
            M.rx.len,
            M.rx.srrctl,
            M.rx.head,
            M.rx.tail,
        ] {
            assert_eq!(
                dst.regs.get(&M.rxq(off, q)),
                src.regs.get(&M.rxq(off, q)),
                "RX{q} reg {off:#x}"
            );
        }
        for off in [M.tx.bal, M.tx.len, M.tx.head, M.tx.tail, M.tx.wbal] {
            assert_eq!(
                dst.regs.get(&M.txq(off, q)),
                src.regs.get(&M.txq(off, q)),
                "TX{q} reg {off:#x}"
            );
        }
        assert_ne!(
            dst.regs[&M.rxq(M.rx.dctl, q)] & DCTL_ENABLE,
            0,
            "RX{q} re-enabled"
        );
        assert_ne!(
            dst.regs[&M.txq(M.tx.dctl, q)] & DCTL_ENABLE,
            0,
            "TX{q} re-enabled"
        );
    }
    assert_eq!(dst.regs[&M.eims], 0b101, "mask restored");
    assert_eq!(
        dst.regs[&M.eicr], 0b101,
        "unmasked causes re-raised through EICS"
    );
    assert_eq!(dst.regs[&M.ivar0], 0x8180_8081);
    assert_eq!(dst.regs[&M.eitr], 0x1f0);
    assert_eq!(saved.irq.eiac, 0b011);
    assert!(
        dst.head_writes_while_enabled.is_empty(),
        "heads written while enabled"
    );
    assert!(dst.forbidden_reads.is_empty() && src.forbidden_reads.is_empty());
    assert_eq!(dst.packets_sent, 0, "nothing sent twice on the destination");
    assert_eq!(
        src.regs[&M.mbx_ctrl], 0x30,
        "the guest's mailbox bits survive"
    );
}

#[test]
fn quiesce_flushes_tx_write_backs_and_the_save_carries_no_flush() {
    let mut m = running_vf();
    let rec = hal::quiesce(&mut m, M).unwrap();
    assert_eq!(
        m.tx_flushes,
        vec![M.txq(M.tx.dctl, 0), M.txq(M.tx.dctl, 1)],
        "each enabled TX queue disabled with SWFLSH, as ixgbe and ixgbevf do"
    );
    let saved = hal::save(&mut m, M, &rec);
    for q in 0..2 {
        assert_eq!(saved.tx[q].dctl & M.tx_flush, 0, "TX{q}: no flush carried");
        assert_ne!(
            saved.tx[q].dctl & DCTL_ENABLE,
            0,
            "TX{q}: enabled as the guest had it"
        );
    }
    // igb's drivers use no flush: none is written.
    let igb = &ivf_common::regs::IGB;
    let mut g = VfModel::new(igb);
    g.set(igb.txq(igb.tx.len, 0), 4096);
    g.set(igb.txq(igb.tx.dctl, 0), DCTL_ENABLE);
    hal::quiesce(&mut g, igb).unwrap();
    assert!(g.tx_flushes.is_empty());
}

#[test]
fn a_head_the_device_did_not_take_is_refused_by_name() {
    let mut src = running_vf();
    let rec = hal::quiesce(&mut src, M).unwrap();
    let saved = hal::save(&mut src, M, &rec);
    let mut dst = VfModel::new(M);
    dst.heads_take_only_zero = true;
    let e = hal::load(&mut dst, M, &saved).unwrap_err();
    assert_eq!(
        e,
        HalError::HeadNotLoaded {
            queue: 0,
            dir: hal::QueueDir::Rx,
            wrote: 17,
            read: 0
        }
    );
    assert_eq!(
        e.to_string(),
        "RX queue 0 head did not load: wrote 17, read back 0"
    );
    // Nothing was enabled: the refusal leaves the queues off.
    for q in 0..2 {
        assert_eq!(
            dst.regs.get(&M.rxq(M.rx.dctl, q)).copied().unwrap_or(0) & DCTL_ENABLE,
            0
        );
        assert_eq!(
            dst.regs.get(&M.txq(M.tx.dctl, q)).copied().unwrap_or(0) & DCTL_ENABLE,
            0
        );
    }
    // Heads of 0 load on such a device.
    let mut zero = saved;
    for q in 0..2 {
        zero.rx[q].head = 0;
        zero.tx[q].head = 0;
    }
    let mut dst = VfModel::new(M);
    dst.heads_take_only_zero = true;
    hal::load(&mut dst, M, &zero).unwrap();
}

#[test]
fn resume_after_quiesce_restarts_in_place() {
    let mut m = running_vf();
    let rec = hal::quiesce(&mut m, M).unwrap();
    hal::resume(&mut m, M, &rec).unwrap();
    assert_ne!(m.regs[&M.rxq(M.rx.dctl, 1)] & DCTL_ENABLE, 0);
    assert_eq!(m.regs[&M.rxq(M.rx.head, 1)], 18, "head kept");
    assert_eq!(m.regs[&M.eims], 0b101);
}

#[test]
fn resume_refires_a_vector_that_masked_itself_at_the_stop() {
    // Vector 1 fired just before the stop and auto-masked itself (EIAC and
    // EIAM set, EIMS clear); its MSI may be lost in the source VMM, so the
    // destination must unmask and fire it, or the guest waits forever.
    let mut src = running_vf();
    src.set(M.eiac, 0b011);
    src.set(M.eiam, 0b011);
    src.set(M.eims, 0b001);
    let (_, dst) = full_cycle(&mut src);
    assert_eq!(dst.regs[&M.eims], 0b011, "vector 1 unmasked");
    assert_eq!(dst.regs[&M.eicr] & 0b011, 0b011, "and fired with vector 0");
}

#[test]
fn resume_keeps_vectors_the_guest_masked() {
    // igbvf_irq_disable: EIMC all, EIAC 0 (EIAM left set). Nothing may fire.
    let mut src = running_vf();
    src.set(M.eiac, 0);
    src.set(M.eiam, 0b111);
    src.set(M.eims, 0);
    src.set(M.eicr, 0);
    let (_, dst) = full_cycle(&mut src);
    assert_eq!(dst.regs.get(&M.eims).copied().unwrap_or(0), 0);
    assert_eq!(dst.regs.get(&M.eicr).copied().unwrap_or(0), 0);
}

#[test]
fn wedged_tx_fails_within_the_poll_bound() {
    let mut m = running_vf();
    m.stuck_tx = 0b10;
    let err = hal::quiesce(&mut m, M).unwrap_err();
    assert!(
        matches!(err, HalError::TxNotDrained { queue: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.errno(), 110);
    assert!(m.delays <= 2 * POLL_LIMIT + 20, "{} delays", m.delays);
}

#[test]
fn state_frame_round_trip_and_figures() {
    let mut src = running_vf();
    let rec = hal::quiesce(&mut src, M).unwrap();
    let (r0, w0) = (src.reads, src.writes);
    let saved = hal::save(&mut src, M, &rec);
    let save_reads = src.reads - r0;
    assert_eq!(src.writes - w0, 0, "save writes nothing");
    let mut buf = [0u8; MAX_FRAME_LEN];
    let h = header_for(Family::Ixgbe, M, 0x8086, 0x10ed, 1);
    let n = write_state_frame(&mut buf, h, M, &saved, &full_pf()).unwrap();
    assert_eq!(n, state_frame_len(M));
    let frame = decode_frame(&buf[..n]).unwrap();
    assert_eq!(frame.state, Some(saved));
    assert_eq!(frame.shape.queue_pairs, 8);
    let mut dst = VfModel::new(M);
    hal::load(&mut dst, M, &saved).unwrap();
    hal::resume(&mut dst, M, &saved.record()).unwrap();
    println!(
        "ixgbe: state frame {n} bytes (8 queue pairs); save {save_reads} reads; \
         load+resume {} writes, {} reads",
        dst.writes, dst.reads
    );
}

fn full_pf() -> ivf_common::state::PfState {
    ivf_common::state::PfState {
        mbx: Some(Default::default()),
        admin: Some(Default::default()),
    }
}
