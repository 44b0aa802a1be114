// SPDX-License-Identifier: GPL-2.0

//! The mailbox log and its replay against the transcription of Linux 7.3's
//! ixgbe PF (`linux_pf/`), driven as a 7.3 ixgbevf drives it: MACVLAN
//! semantics and the PF's limited pool, the order of the receive mode
//! (xcast, multicast, unicast), API 1.7 and what follows it, and the
//! requests whose PF-side state the stream cannot carry (IPsec SAs, a
//! filter past the log's slots, an accepted request the log does not know).
//! The PF after the replay is compared with the PF after the guest's own
//! requests: its view, its xcast mode and its VMOLR bits.

mod linux_pf;
mod support;

use ivf_common::ids::Family;
use ivf_common::mbx::{
    mac_words, msg, replay_log, MbxError, MbxLog, Message, Snoop, Uncarried, VfMailbox,
    ENCODED_LEN, MAX_MACVLANS, MBX_WORDS,
};
use ivf_common::regs::{RegMap, IGB, IXGBE};
use ivf_common::stream::StreamError;
use linux_pf::*;

const M: &RegMap = &IXGBE;

fn send(pf: &mut LinuxPf, words: &[u32]) -> Result<[u32; MBX_WORDS], MbxError> {
    let map = if pf.family == Family::Igb { &IGB } else { M };
    VfMailbox::new(pf, map).exchange(&Message::new(words))
}

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0x00, 0x5e, 0x10, 0x20, last]
}

fn snooped(family: Family) -> LinuxPf {
    let mut pf = LinuxPf::new(family);
    pf.snoop = Some(Snoop::default());
    pf
}

fn log_of(pf: &LinuxPf) -> MbxLog {
    pf.snoop.as_ref().unwrap().log
}

/// `ixgbevf_set_rx_mode`: the xcast mode, the multicast list, then the
/// unicast list (index 1 to n, or 0 for none). Errors are ignored, as
/// ixgbevf ignores them.
fn set_rx_mode(pf: &mut LinuxPf, xcast: u32, mc: &[u16], uc: &[[u8; 6]]) {
    let _ = send(pf, &[msg::UPDATE_XCAST_MODE, xcast]);
    let _ = VfMailbox::new(&mut *pf, M).exchange(&Message::set_multicast(mc));
    if uc.is_empty() {
        let _ = send(pf, &[msg::SET_PROMISC_OR_MACVLAN, 0, 0]);
    }
    for (i, m) in uc.iter().enumerate() {
        let (a, b) = mac_words(m);
        let _ = send(
            pf,
            &[msg::word0(msg::SET_PROMISC_OR_MACVLAN, i as u32 + 1), a, b],
        );
    }
}

/// What a 7.3 ixgbevf sends from its reset to an open interface:
/// `ixgbevf_reset_hw_vf`, `ixgbevf_negotiate_api` (1.7 first, down to 1.0)
/// and `ixgbevf_set_features`, `ixgbevf_get_queues`, `ixgbevf_configure`
/// (rx mode, VLANs, SET_LPE), `ixgbevf_up_complete` (MAC, link state).
fn ixgbevf_up(pf: &mut LinuxPf, vlans: &[u32], xcast: u32, mc: &[u16], uc: &[[u8; 6]]) -> u32 {
    send(pf, &[msg::RESET]).unwrap_or_default();
    let mut api = API_10;
    for a in [
        API_17, API_16, API_15, API_14, API_13, API_12, API_11, API_10,
    ] {
        if send(pf, &[msg::API_NEGOTIATE, a, 0]).is_ok() {
            api = a;
            break;
        }
    }
    if api == API_17 {
        let f = send(pf, &[FEATURES_NEGOTIATE, SUP_IPSEC | SUP_ESX_MBX]).unwrap();
        assert_eq!(
            f[1], SUP_IPSEC,
            "a Linux PF offers IPsec, not ESX's mailbox"
        );
    }
    if api != API_10 {
        send(pf, &[msg::GET_QUEUES, 0, 0, 0, 0]).unwrap();
    }
    set_rx_mode(pf, xcast, mc, uc);
    for v in vlans {
        send(pf, &[msg::word0(msg::SET_VLAN, 1), *v]).unwrap();
    }
    send(pf, &[msg::SET_LPE, 1518]).unwrap();
    let (a, b) = mac_words(&mac(0x01));
    send(pf, &[msg::SET_MAC_ADDR, a, b]).unwrap();
    send(pf, &[GET_LINK_STATE, 0]).unwrap();
    api
}

fn encoded(l: &MbxLog) -> [u8; ENCODED_LEN] {
    let mut b = [0u8; ENCODED_LEN];
    l.encode(&mut b);
    b
}

/// Replays `log` at `dst` and checks the PF ends as `src` did.
fn replay_matches(src: &LinuxPf, dst: &mut LinuxPf, log: &MbxLog) {
    let (accepted, _) = replay_log(dst, M, Family::Ixgbe, log).unwrap();
    assert_eq!(accepted, MbxLog { ignored: 0, ..*log });
    assert_eq!(
        dst.ixgbe_state(),
        src.ixgbe_state(),
        "PF view, xcast mode, VMOLR"
    );
}

// Rule 1: MACVLAN semantics.

#[test]
fn a_shrunk_unicast_list_leaves_no_stale_filter() {
    let mut src = snooped(Family::Ixgbe);
    ixgbevf_up(
        &mut src,
        &[],
        XCAST_MULTI,
        &[],
        &[mac(0xa), mac(0xb), mac(0xc)],
    );
    // The guest drops one address: ixgbevf sends the list again from 1.
    set_rx_mode(&mut src, XCAST_MULTI, &[], &[mac(0xa), mac(0xb)]);
    assert_eq!(src.pf.filters, [mac(0xa), mac(0xb)]);
    let log = log_of(&src);
    let mut dst = LinuxPf::new(Family::Ixgbe);
    replay_matches(&src, &mut dst, &log);
    assert_eq!(dst.pf.filters, [mac(0xa), mac(0xb)], "no stale filter");
}

#[test]
fn the_pfs_pool_is_followed_and_a_smaller_one_refused_by_name() {
    // Other VFs hold all but two of the shared entries.
    let mut src = snooped(Family::Ixgbe);
    src.macvlans_free = 2;
    ixgbevf_up(
        &mut src,
        &[],
        XCAST_MULTI,
        &[],
        &[mac(0xa), mac(0xb), mac(0xc)],
    );
    assert_eq!(
        src.pf.filters,
        [mac(0xa), mac(0xb)],
        "the third NACKed (-ENOSPC)"
    );
    let log = log_of(&src);
    assert_eq!(log.macvlans.iter().flatten().count(), 2);
    assert_eq!(log.uncarried(), None, "a refused filter is no PF state");
    let mut dst = LinuxPf::new(Family::Ixgbe);
    dst.macvlans_free = 2;
    replay_matches(&src, &mut dst, &log);
    // A destination with room for one: a named refusal, not a timeout.
    let mut small = LinuxPf::new(Family::Ixgbe);
    small.macvlans_free = 1;
    let e = replay_log(&mut small, M, Family::Ixgbe, &log).unwrap_err();
    assert!(
        matches!(e, MbxError::Refused { kind: msg::SET_PROMISC_OR_MACVLAN, reply }
            if reply & msg::NACK != 0),
        "{e:?}"
    );
    assert_eq!(e.errno(), 121, "EREMOTEIO");
    assert!(e.to_string().contains("SET_MACVLAN"), "{e}");
    assert_eq!(small.unanswered, 0);
}

#[test]
fn a_refused_index_1_leaves_the_log_as_the_pf_clears() {
    // The VF added filters; then the administrator set its MAC (no VF
    // reset): the PF refuses index 1 before its clear and keeps them, but
    // a destination with the same settings refuses them too. The log
    // holds none: ixgbe_set_vf_macvlan clears before it looks for room,
    // so after a refused index 1 with a valid address no filter of the
    // VF can be counted on.
    let mut src = snooped(Family::Ixgbe);
    ixgbevf_up(&mut src, &[], XCAST_MULTI, &[], &[mac(0xa), mac(0xb)]);
    // `ip link set pf vf 0 mac` with the guest's own MAC.
    src.pf_set_mac = true;
    set_rx_mode(&mut src, XCAST_MULTI, &[], &[mac(0xa), mac(0xb)]);
    assert_eq!(src.pf.filters, [mac(0xa), mac(0xb)], "kept by the PF");
    let log = log_of(&src);
    assert_eq!(log.macvlans, [None; MAX_MACVLANS]);
    let mut dst = LinuxPf::new(Family::Ixgbe);
    dst.pf_set_mac = true;
    dst.pf.mac = Some(mac(0x01));
    replay_log(&mut dst, M, Family::Ixgbe, &log).expect("no filter the PF refuses");
    assert!(dst.pf.filters.is_empty());
}

#[test]
fn a_filter_past_the_logs_slots_stops_the_migration() {
    // The PF's pool is its free RAR entries (104 on an 82599 with 8 VFs),
    // the log's 16 slots: the 17th filter is PF state the stream cannot
    // carry.
    let mut src = snooped(Family::Ixgbe);
    let uc: Vec<[u8; 6]> = (0..17).map(|i| mac(0x40 + i)).collect();
    ixgbevf_up(&mut src, &[], XCAST_MULTI, &[], &uc);
    assert_eq!(src.pf.filters.len(), 17);
    let log = log_of(&src);
    assert_eq!(
        log.uncarried(),
        Some(Uncarried::Request {
            kind: msg::SET_PROMISC_OR_MACVLAN as u16
        })
    );
    let e = MbxLog::decode(Family::Ixgbe, &encoded(&log)).unwrap_err();
    assert!(
        matches!(e, StreamError::Malformed { field, value, .. }
            if field.contains("not carried") && value == 6),
        "{e:?}"
    );
    // Sixteen fit, and replay whole.
    let mut src = snooped(Family::Ixgbe);
    ixgbevf_up(&mut src, &[], XCAST_MULTI, &[], &uc[..16]);
    let log = log_of(&src);
    assert_eq!(log.uncarried(), None);
    replay_matches(&src, &mut LinuxPf::new(Family::Ixgbe), &log);
}

// Rule 2: the order of the receive mode.

#[test]
fn the_replay_sends_the_receive_mode_in_ixgbevfs_order() {
    // The destination VF's PF kept an earlier tenant's MULTI mode (a
    // RESET does not reset `xcast_mode`). The guest is in mode NONE with
    // two multicast hashes: ixgbevf's order (NONE, then the list) leaves
    // ROMPE on; the list then NONE would leave it off.
    let mut src = snooped(Family::Ixgbe);
    ixgbevf_up(&mut src, &[100], XCAST_MULTI, &[0x10, 0x20], &[mac(0xa)]);
    set_rx_mode(&mut src, XCAST_NONE, &[0x10, 0x20], &[mac(0xa)]);
    assert_ne!(src.vmolr & VMOLR_ROMPE, 0);
    let log = log_of(&src);
    let mut dst = LinuxPf::new(Family::Ixgbe);
    ixgbevf_up(&mut dst, &[], XCAST_MULTI, &[0x44], &[]);
    dst.requests.clear();
    replay_matches(&src, &mut dst, &log);
    // And the order itself: xcast, multicast, unicast after the VLANs.
    let kinds: Vec<u32> = dst.requests.iter().map(|w| w & msg::TYPE_MASK).collect();
    assert_eq!(
        kinds,
        [
            msg::RESET,
            msg::API_NEGOTIATE,
            msg::SET_MAC_ADDR,
            msg::SET_LPE,
            msg::SET_VLAN,
            msg::UPDATE_XCAST_MODE,
            msg::SET_MULTICAST,
            msg::SET_PROMISC_OR_MACVLAN,
        ]
    );
}

#[test]
fn every_mode_replays_to_the_same_vmolr_whatever_the_pf_kept() {
    for trusted in [false, true] {
        for kept in [XCAST_NONE, XCAST_MULTI, XCAST_ALLMULTI] {
            for mode in [XCAST_NONE, XCAST_MULTI, XCAST_ALLMULTI, XCAST_PROMISC] {
                for mc in [&[][..], &[0x33][..]] {
                    let mut src = snooped(Family::Ixgbe);
                    src.trusted = trusted;
                    src.pf_promisc = true;
                    ixgbevf_up(&mut src, &[], mode, mc, &[]);
                    let log = log_of(&src);
                    // An earlier tenant of the destination VF left its
                    // mode (and VMOLR) at the PF.
                    let mut dst = LinuxPf::new(Family::Ixgbe);
                    dst.trusted = true;
                    ixgbevf_up(&mut dst, &[], kept, &[0x44], &[]);
                    assert_eq!(dst.xcast_mode, kept);
                    dst.trusted = trusted;
                    dst.pf_promisc = true;
                    let (_, _) = replay_log(&mut dst, M, Family::Ixgbe, &log).unwrap();
                    assert_eq!(
                        (dst.xcast_mode, dst.vmolr & !VMOLR_ROMPE),
                        (src.xcast_mode, src.vmolr & !VMOLR_ROMPE),
                        "trusted {trusted} kept {kept} mode {mode} mc {mc:?}"
                    );
                    if !mc.is_empty() {
                        assert_eq!(dst.vmolr, src.vmolr, "mode {mode} kept {kept}");
                    }
                }
            }
        }
    }
}

// Rule 3: API 1.7 and what follows it; what the stream cannot carry.

#[test]
fn a_7_3_ixgbevf_session_is_logged_whole_and_replays() {
    let mut src = snooped(Family::Ixgbe);
    let api = ixgbevf_up(&mut src, &[0, 100, 200], XCAST_MULTI, &[0x10], &[mac(0xa)]);
    assert_eq!(api, API_17);
    let log = log_of(&src);
    assert_eq!(log.api, Some(API_17));
    assert_eq!(
        (log.ignored, log.uncarried()),
        (0, None),
        "FEATURES_NEGOTIATE, GET_QUEUES and GET_LINK_STATE leave no PF state"
    );
    assert_eq!(MbxLog::decode(Family::Ixgbe, &encoded(&log)), Ok(log));
    replay_matches(&src, &mut LinuxPf::new(Family::Ixgbe), &log);
}

#[test]
fn api_1_5_is_no_linux_pfs_and_is_refused_at_decode() {
    let mut pf = LinuxPf::new(Family::Ixgbe);
    send(&mut pf, &[msg::RESET]).unwrap_or_default();
    assert!(send(&mut pf, &[msg::API_NEGOTIATE, API_15]).is_err());
    assert!(send(&mut pf, &[msg::API_NEGOTIATE, API_20]).is_err());
    let log = MbxLog {
        flags: 1,
        api: Some(API_15),
        ..MbxLog::default()
    };
    assert_eq!(
        MbxLog::decode(Family::Ixgbe, &encoded(&log)),
        Err(StreamError::Malformed {
            field: "PF_MBX api",
            value: u64::from(API_15),
            expected: u64::from(API_17)
        })
    );
    // A source whose PF took 1.5 (not Linux's) cannot carry it either.
    let mut l = MbxLog::default();
    l.observe(Family::Ixgbe, &req(&[msg::RESET]), msg::RESET | msg::ACK);
    l.observe(
        Family::Ixgbe,
        &req(&[msg::API_NEGOTIATE, API_15]),
        msg::API_NEGOTIATE | msg::ACK,
    );
    assert_eq!(
        l.uncarried(),
        Some(Uncarried::Request {
            kind: msg::API_NEGOTIATE as u16
        })
    );
}

fn req(w: &[u32]) -> [u32; MBX_WORDS] {
    let mut r = [0; MBX_WORDS];
    r[..w.len()].copy_from_slice(w);
    r
}

#[test]
fn an_ipsec_sa_stops_the_migration_until_the_vf_resets() {
    let mut src = snooped(Family::Ixgbe);
    src.trusted = true;
    src.vf_ipsec = true;
    ixgbevf_up(&mut src, &[], XCAST_MULTI, &[], &[]);
    // ixgbevf_ipsec_set_pf_sa: spi, dir (IN), proto, family, address, key.
    let sa = send(
        &mut src,
        &[IPSEC_ADD, 0x1234, XFRM_DEV_OFFLOAD_IN | 50 << 8 | 2 << 16],
    )
    .unwrap();
    assert_eq!(src.pf.ipsec_sas, [sa[1]]);
    let log = log_of(&src);
    assert_eq!(log.uncarried(), Some(Uncarried::IpsecSa));
    assert!(log.uncarried().unwrap().to_string().contains("IPsec"));
    let e = MbxLog::decode(Family::Ixgbe, &encoded(&log)).unwrap_err();
    assert!(
        matches!(e, StreamError::Malformed { field, .. } if field.contains("IPsec")),
        "{e:?}"
    );
    // Deleting it does not make the log sure no SA is left (a delete of
    // an unused entry is ACKed too); the VF's RESET clears them all.
    send(&mut src, &[IPSEC_DEL, sa[1]]).unwrap();
    assert_eq!(log_of(&src).uncarried(), Some(Uncarried::IpsecSa));
    ixgbevf_up(&mut src, &[], XCAST_MULTI, &[], &[]);
    assert!(src.pf.ipsec_sas.is_empty());
    assert_eq!(log_of(&src).uncarried(), None);
    // An untrusted VF's SA is refused: nothing to carry.
    let mut pf = snooped(Family::Ixgbe);
    pf.vf_ipsec = true;
    ixgbevf_up(&mut pf, &[], XCAST_MULTI, &[], &[]);
    assert!(send(&mut pf, &[IPSEC_ADD, 0x1234, XFRM_DEV_OFFLOAD_IN]).is_err());
    assert_eq!(log_of(&pf).uncarried(), None);
}

#[test]
fn an_accepted_request_the_log_does_not_know_stops_the_migration() {
    // A later PF that ACKs a message this code does not know (0x13).
    let mut l = MbxLog::default();
    l.observe(Family::Ixgbe, &req(&[msg::RESET]), msg::RESET | msg::ACK);
    l.observe(Family::Ixgbe, &req(&[0x13, 1]), 0x13 | msg::ACK | msg::CTS);
    assert_eq!(l.uncarried(), Some(Uncarried::Request { kind: 0x13 }));
    let e = MbxLog::decode(Family::Ixgbe, &encoded(&l)).unwrap_err();
    assert!(
        matches!(e, StreamError::Malformed { field, value: 0x13, .. } if field.contains("not carried")),
        "{e:?}"
    );
    // Type 0 is no message, but a forged reply word can "accept" it: the
    // flag alone stops the migration (the fuzzer found this form).
    let mut l = MbxLog::default();
    l.observe(Family::Ixgbe, &req(&[0, 1]), msg::ACK);
    assert_eq!(l.uncarried(), Some(Uncarried::Request { kind: 0 }));
    let e = MbxLog::decode(Family::Ixgbe, &encoded(&l)).unwrap_err();
    assert!(
        matches!(e, StreamError::Malformed { field, value: 0, .. } if field.contains("not carried")),
        "{e:?}"
    );
    // Refused, it is nothing.
    let mut l = MbxLog::default();
    l.observe(Family::Ixgbe, &req(&[msg::RESET]), msg::RESET | msg::ACK);
    l.observe(Family::Ixgbe, &req(&[0x13, 1]), 0x13 | msg::NACK | msg::CTS);
    assert_eq!(l.uncarried(), None);
    // The queries leave no PF state.
    for q in [
        msg::GET_QUEUES,
        GET_RETA,
        GET_RSS_KEY,
        GET_LINK_STATE,
        GET_PF_LINK_STATE,
        FEATURES_NEGOTIATE,
    ] {
        assert!(!l.observe(Family::Ixgbe, &req(&[q]), q | msg::ACK | msg::CTS));
    }
    assert_eq!((l.uncarried(), l.ignored), (None, 0));
}

#[test]
fn igb_mac_filters_stop_the_migration_until_cleared() {
    let mut pf = snooped(Family::Igb);
    send(&mut pf, &[msg::RESET]).unwrap_or_default();
    let (a, b) = mac_words(&mac(0xa));
    send(&mut pf, &[msg::word0(msg::SET_MAC_ADDR, 2), a, b]).unwrap();
    assert_eq!(log_of(&pf).uncarried(), Some(Uncarried::IgbMacFilters));
    // igb keeps them across the VF's RESET; a clear drops them.
    send(&mut pf, &[msg::RESET]).unwrap_or_default();
    assert_eq!(pf.pf.filters, [mac(0xa)]);
    assert_eq!(log_of(&pf).uncarried(), Some(Uncarried::IgbMacFilters));
    let (a, b) = mac_words(&mac(0x1));
    send(&mut pf, &[msg::word0(msg::SET_MAC_ADDR, 1), a, b]).unwrap();
    assert_eq!(log_of(&pf).uncarried(), None);
}

/// Counts the mailbox memory words read through it.
struct MemReads<'a> {
    pf: &'a mut LinuxPf,
    words: u32,
}

impl ivf_common::hal::RegIo for MemReads<'_> {
    fn read32(&mut self, off: u32) -> u32 {
        if (M.mbx_mem..M.mbx_mem + 4 * MBX_WORDS as u32).contains(&off) {
            self.words += 1;
        }
        self.pf.read32(off)
    }

    fn write32(&mut self, off: u32, v: u32) {
        self.pf.write32(off, v)
    }

    fn delay_us(&mut self, us: u32) {
        self.pf.delay_us(us)
    }
}

#[test]
fn a_reply_is_read_only_as_far_as_it_carries_anything() {
    let mut pf = LinuxPf::new(Family::Ixgbe);
    let mut io = MemReads {
        pf: &mut pf,
        words: 0,
    };
    // RESET: word 0, the MAC in words 1 and 2, the multicast filter type.
    let r = VfMailbox::new(&mut io, M)
        .exchange(&Message::reset())
        .unwrap();
    assert_eq!(io.words, 4);
    assert!(r[4..].iter().all(|w| *w == 0), "{r:x?}");
    io.words = 0;
    VfMailbox::new(&mut io, M)
        .exchange(&Message::new(&[msg::SET_VLAN | 1 << 16, 100]))
        .unwrap();
    assert_eq!(io.words, 1, "a SET_VLAN answer is its word 0");
}
