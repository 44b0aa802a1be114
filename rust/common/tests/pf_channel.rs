// SPDX-License-Identifier: GPL-2.0

//! The PF-side state channel against Linux 7.3's ixgbe PF as `linux_pf/`
//! transcribes it: API 1.0 to 1.4, 1.6 and 1.7, FEATURES_NEGOTIATE,
//! GET_QUEUES, the link-state query, UPDATE_XCAST_MODE, multicast, VLANs,
//! MAC. The snoop watches a 7.3 ixgbevf's exchanges, the log is replayed on
//! a fresh PF, and the PF ends with the same filters, mode and VMOLR.
//! Malicious traffic leaves the log bounded and valid.

mod linux_pf;
mod support;

use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::{ctrl, msg, replay_log, Message, Snoop, VfMailbox, MBX_WORDS};
use ivf_common::regs::{RegMap, IXGBE};
use linux_pf::{LinuxPf, API_11, API_15, API_17, FEATURES_NEGOTIATE, GET_LINK_STATE};

const M: &RegMap = &IXGBE;

/// Linux 7.3's ixgbe PF behind the VF's mailbox (`linux_pf/`).
type PfModel = LinuxPf;

fn snooped() -> PfModel {
    let mut pf = LinuxPf::new(Family::Ixgbe);
    pf.snoop = Some(Snoop::default());
    pf
}

fn send(pf: &mut PfModel, words: &[u32]) -> Result<[u32; MBX_WORDS], ivf_common::mbx::MbxError> {
    let mut w = [0u32; MBX_WORDS];
    w[..words.len()].copy_from_slice(words);
    let m = Message {
        words: w,
        len: words.len(),
    };
    VfMailbox::new(pf, M).exchange(&m)
}

/// What a Linux 7.3 ixgbevf does after a reset (API 1.7 first, refused
/// 1.5 never asked once 1.7 is taken, FEATURES_NEGOTIATE, GET_QUEUES, the
/// receive mode, VLANs, LPE, MAC, link state), with some configuration on
/// top.
fn guest_driver_session(pf: &mut PfModel) {
    send(pf, &[msg::RESET]).unwrap();
    send(pf, &[msg::API_NEGOTIATE, API_17, 0]).unwrap();
    let f = send(pf, &[FEATURES_NEGOTIATE, 3]).unwrap();
    assert_eq!(f[1], 1, "IPsec, not ESX's mailbox");
    let q = send(pf, &[msg::GET_QUEUES, 0, 0, 0, 0]).unwrap();
    assert_eq!((q[1], q[2]), (2, 2));
    send(pf, &[msg::UPDATE_XCAST_MODE, 2]).unwrap();
    send(pf, &[msg::SET_MULTICAST | 3 << 16, 0x0bbb_0aaa, 0x0ccc]).unwrap();
    send(pf, &[msg::SET_PROMISC_OR_MACVLAN, 0, 0]).unwrap();
    for vid in [10, 20, 30] {
        send(pf, &[msg::SET_VLAN | 1 << 16, vid]).unwrap();
    }
    send(pf, &[msg::SET_VLAN, 20]).unwrap();
    send(pf, &[msg::SET_LPE, 9018]).unwrap();
    send(pf, &[msg::SET_MAC_ADDR, 0x5634_1202, 0x9a78]).unwrap();
    send(pf, &[GET_LINK_STATE, 0]).unwrap();
}

#[test]
fn snooped_log_replays_to_the_same_pf_state() {
    let mut src = snooped();
    guest_driver_session(&mut src);
    let log = src.snoop.as_ref().unwrap().log;
    assert_eq!(log.api, Some(API_17));
    assert_eq!(log.vlan_ids().collect::<Vec<_>>(), [10, 30]);
    assert_eq!((log.ignored, log.uncarried()), (0, None));
    let mut dst = LinuxPf::new(Family::Ixgbe);
    let (accepted, sent) = replay_log(&mut dst, M, Family::Ixgbe, &log).unwrap();
    assert_eq!(accepted, log, "the destination PF accepted every request");
    assert_eq!(
        dst.ixgbe_state(),
        src.ixgbe_state(),
        "the destination PF holds the source's filters, mode and VMOLR"
    );
    assert_eq!(
        sent,
        1 + 1 + 1 + 1 + 2 + 1 + 1,
        "RESET, API, MAC, LPE, 2 VLANs, XCAST, MC"
    );
    assert_eq!(
        dst.read32(M.mbx_ctrl) & ctrl::R2C,
        0,
        "no status bit left for the guest to see"
    );
    println!("replay: {sent} messages");
}

#[test]
fn api_gates_are_respected_on_replay() {
    // An API 1.1 guest could not set xcast mode: the log holds none.
    let mut src = snooped();
    send(&mut src, &[msg::RESET]).unwrap();
    send(&mut src, &[msg::API_NEGOTIATE, API_11]).unwrap();
    assert!(send(&mut src, &[msg::UPDATE_XCAST_MODE, 2]).is_err());
    // Nor FEATURES_NEGOTIATE (1.7 only), nor 1.5 (no Linux PF's).
    assert!(send(&mut src, &[FEATURES_NEGOTIATE, 1]).is_err());
    assert!(send(&mut src, &[msg::API_NEGOTIATE, API_15]).is_err());
    let log = src.snoop.unwrap().log;
    assert_eq!((log.api, log.xcast), (Some(API_11), None));
    let mut dst = LinuxPf::new(Family::Ixgbe);
    replay_log(&mut dst, M, Family::Ixgbe, &log).unwrap();
    assert_eq!(dst.pf.api, API_11);
}

#[test]
fn malicious_guest_keeps_the_log_bounded_and_valid() {
    let mut pf = snooped();
    guest_driver_session(&mut pf);
    let before = pf.snoop.as_ref().unwrap().log;
    // Unknown types and a REQ with nothing new written, NACKed by the PF:
    // the log does not move.
    assert!(send(&mut pf, &[0x7f]).is_err());
    pf.write32(M.mbx_ctrl, ctrl::REQ);
    pf.read32(M.mbx_mem);
    let after = pf.snoop.as_ref().unwrap().log;
    assert_eq!(after, before);
    // An oversized multicast count: ixgbe_set_vf_multicasts takes the
    // first 30 (ACK), and so does the log.
    send(&mut pf, &[msg::SET_MULTICAST | 200 << 16, 0x0002_0001]).unwrap();
    let after = pf.snoop.as_ref().unwrap().log;
    assert_eq!(after.mc[..after.mc_count as usize], pf.pf.mc[..]);
    assert_eq!((after.mc_count, after.uncarried()), (30, None));
    assert_eq!(
        after.vlan_ids().collect::<Vec<_>>(),
        before.vlan_ids().collect::<Vec<_>>()
    );
    // A flood: every VLAN added and removed, ten thousand requests; the log
    // is the same fixed-size value, and correct.
    for i in 0..10_000u32 {
        let vid = i % 4096;
        send(&mut pf, &[msg::SET_VLAN | (i / 4096 % 2) << 16, vid]).unwrap();
    }
    let log = pf.snoop.as_ref().unwrap().log;
    // The PF never removes VLAN 0 (ixgbe_set_vf_vlan_msg), and adds it back
    // at every RESET: a log without it replays to the same set.
    assert!(pf.pf.vlans.contains(&0) && !log.has_vlan(0));
    let want: Vec<u16> = pf.pf.vlans.iter().copied().filter(|v| *v != 0).collect();
    assert_eq!(log.vlan_ids().collect::<Vec<_>>(), want);
    // A half-written message: words written, no REQ. Nothing is logged.
    pf.write32(M.mbx_mem, msg::SET_MAC_ADDR);
    pf.write32(M.mbx_mem + 4, 0xdead_beef);
    assert_eq!(pf.snoop.as_ref().unwrap().log.mac, log.mac);
}

#[test]
fn a_request_in_flight_is_not_logged() {
    let mut pf = snooped();
    send(&mut pf, &[msg::RESET]).unwrap();
    // The VF posts SET_MAC_ADDR and stops before reading the reply.
    pf.write32(M.mbx_mem, msg::SET_MAC_ADDR);
    pf.write32(M.mbx_mem + 4, 0x0403_0201);
    pf.write32(M.mbx_mem + 8, 0x0605);
    pf.write32(M.mbx_ctrl, ctrl::REQ);
    let s = pf.snoop.as_ref().unwrap();
    assert!(s.in_flight());
    assert_eq!(
        s.log.mac, None,
        "not logged until the VF reads the PF's ACK"
    );
}

#[test]
fn a_tainted_mailbox_logs_nothing_until_rewritten() {
    let mut pf = snooped();
    send(&mut pf, &[msg::RESET]).unwrap();
    // An access the trap cannot follow word by word taints the snoop...
    pf.snoop.as_mut().unwrap().taint();
    pf.write32(M.mbx_ctrl, ctrl::REQ);
    assert!(
        !pf.snoop.as_ref().unwrap().in_flight(),
        "an unknown message is never pending"
    );
    // ...until the VF writes a whole message again.
    send(&mut pf, &[msg::SET_LPE, 1522]).unwrap();
    assert_eq!(pf.snoop.as_ref().unwrap().log.max_frame, Some(1522));
}
