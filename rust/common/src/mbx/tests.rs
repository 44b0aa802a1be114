// SPDX-License-Identifier: GPL-2.0

//! The mailbox log, snoop and replay against each other.

use super::super::ids::Family;
use super::super::stream::StreamError;
use super::*;

fn req(w: &[u32]) -> [u32; MBX_WORDS] {
    let mut r = [0; MBX_WORDS];
    r[..w.len()].copy_from_slice(w);
    r
}

#[test]
fn a_reply_the_vf_wrote_itself_is_not_logged() {
    let map = &super::super::regs::IGB;
    let set = [msg::SET_MAC_ADDR, 0x4433_2212, 0x6655];
    let mut s = Snoop::default();
    for (i, w) in set.iter().enumerate() {
        s.on_write(map, map.mbx_mem + 4 * i as u32, *w);
    }
    s.on_write(map, map.mbx_ctrl, ctrl::REQ);
    // The VF forges the PF's ACK in the buffer, then reads it back.
    s.on_write(map, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
    s.on_read(map, Family::Igb, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
    assert_eq!(s.log.mac, None, "a self-written ACK was logged");
    // A request that carries ACK itself, read back before the PF answers.
    s.on_write(map, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
    s.on_write(map, map.mbx_ctrl, ctrl::REQ);
    assert!(!s.in_flight(), "the PF ignores a request with ACK set");
    s.on_read(map, Family::Igb, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
    assert_eq!(s.log.mac, None);
    // The honest exchange is logged.
    s.on_write(map, map.mbx_mem, msg::SET_MAC_ADDR);
    s.on_write(map, map.mbx_ctrl, ctrl::REQ);
    s.on_read(map, Family::Igb, map.mbx_mem, msg::SET_MAC_ADDR | msg::ACK);
    assert_eq!(s.log.mac, Some([0x12, 0x22, 0x33, 0x44, 0x55, 0x66]));
}

#[test]
fn only_acked_requests_count() {
    let mut l = MbxLog::default();
    assert!(l.observe(Family::Igb, &req(&[msg::RESET]), msg::RESET | msg::ACK));
    let set = req(&[msg::SET_MAC_ADDR, 0x4433_2212, 0x6655]);
    assert!(!l.observe(Family::Igb, &set, msg::SET_MAC_ADDR | msg::NACK));
    assert_eq!(l.mac, None);
    assert!(
        !l.observe(Family::Igb, &set, msg::RESET | msg::ACK),
        "reply of another type"
    );
    assert!(l.observe(Family::Igb, &set, msg::SET_MAC_ADDR | msg::ACK | msg::CTS));
    assert_eq!(l.mac, Some([0x12, 0x22, 0x33, 0x44, 0x55, 0x66]));
}

#[test]
fn reset_starts_over_and_floods_stay_bounded() {
    let mut l = MbxLog::default();
    l.observe(Family::Igb, &req(&[msg::RESET]), msg::RESET | msg::ACK);
    for vid in 0..4096 {
        l.observe(
            Family::Igb,
            &req(&[msg::SET_VLAN | 1 << 16, vid]),
            msg::SET_VLAN | msg::ACK,
        );
    }
    assert_eq!(l.vlan_ids().count(), 4096);
    l.observe(
        Family::Igb,
        &req(&[msg::SET_VLAN, 7]),
        msg::SET_VLAN | msg::ACK,
    );
    assert!(!l.has_vlan(7));
    // An oversized multicast count is ignored, not truncated.
    assert!(!l.observe(
        Family::Igb,
        &req(&[msg::SET_MULTICAST | 31 << 16]),
        msg::SET_MULTICAST | msg::ACK
    ));
    assert_eq!(l.ignored, 1);
    l.observe(Family::Igb, &req(&[msg::RESET]), msg::RESET | msg::ACK);
    assert_eq!(l.vlan_ids().count(), 0);
    assert_eq!(
        l.ignored, 1,
        "the count of ignored requests survives a reset"
    );
}

#[test]
fn replay_order_and_round_trip() {
    let mut l = MbxLog::default();
    let f = Family::Ixgbe;
    l.observe(f, &req(&[msg::RESET]), msg::RESET | msg::ACK);
    l.observe(
        f,
        &req(&[msg::API_NEGOTIATE, 5]),
        msg::API_NEGOTIATE | msg::ACK,
    );
    l.observe(
        f,
        &req(&[msg::SET_MAC_ADDR, 0x0403_0202, 0x0605]),
        msg::SET_MAC_ADDR | msg::ACK,
    );
    l.observe(
        f,
        &req(&[msg::SET_MULTICAST | 3 << 16, 0x0002_0001, 0x0003]),
        msg::SET_MULTICAST | msg::ACK,
    );
    l.observe(
        f,
        &req(&[msg::SET_VLAN | 1 << 16, 100]),
        msg::SET_VLAN | msg::ACK,
    );
    l.observe(
        f,
        &req(&[msg::UPDATE_XCAST_MODE, 2]),
        msg::UPDATE_XCAST_MODE | msg::ACK,
    );
    l.observe(
        f,
        &req(&[msg::SET_PROMISC_OR_MACVLAN | 2 << 16, 0x0a0b0c0e, 0x0e0f]),
        msg::SET_PROMISC_OR_MACVLAN | msg::ACK,
    );
    let mut kinds = [0u32; 8];
    let mut n = 0;
    let mut replayed = MbxLog::default();
    l.replay(f, |m| {
        kinds[n] = m.kind();
        n += 1;
        let mut r = [0; MBX_WORDS];
        r[..m.len].copy_from_slice(&m.words[..m.len]);
        replayed.observe(f, &r, m.kind() | msg::ACK);
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(
        &kinds[..n],
        [
            msg::RESET,
            msg::API_NEGOTIATE,
            msg::SET_MAC_ADDR,
            msg::SET_VLAN,
            // ixgbevf_set_rx_mode's order: xcast, multicast, unicast.
            msg::UPDATE_XCAST_MODE,
            msg::SET_MULTICAST,
            msg::SET_PROMISC_OR_MACVLAN,
        ]
    );
    assert_eq!(replayed, l, "replaying the log rebuilds the same log");
    let mut buf = [0u8; ENCODED_LEN];
    l.encode(&mut buf);
    assert_eq!(MbxLog::decode(f, &buf), Ok(l));
    assert_eq!(
        MbxLog::decode(f, &buf[1..]),
        Err(StreamError::Malformed {
            field: "PF_MBX section",
            value: ENCODED_LEN as u64 - 1,
            expected: ENCODED_LEN as u64
        })
    );
    assert!(
        MbxLog::decode(Family::Igb, &buf).is_err(),
        "an ixgbe log (API, MACVLANs) is no igb log"
    );
}
