// SPDX-License-Identifier: GPL-2.0

//! The PF-side state channel against a model of the ixgbe PF's mailbox
//! responder: API 1.0 to 1.5, GET_QUEUES, UPDATE_XCAST_MODE, multicast,
//! VLANs, MAC. The snoop watches a VF driver's exchanges, the log is replayed
//! on a fresh PF, and the PF ends with the same filters. Malicious traffic
//! leaves the log bounded and valid.

use std::collections::BTreeSet;

use ivf_common::hal::RegIo;
use ivf_common::ids::Family;
use ivf_common::mbx::{ctrl, msg, replay_log, Message, Snoop, VfMailbox, MBX_WORDS};
use ivf_common::regs::{RegMap, IXGBE};

const M: &RegMap = &IXGBE;
/// `ixgbe_mbox_api_*`: 1.0 = 0, 2.0 = 1, 1.1 = 2, 1.2 = 3, 1.3 = 4, 1.4 = 5, 1.5 = 6.
const API_11: u32 = 2;
const API_12: u32 = 3;
const API_15: u32 = 6;

/// What an ixgbe PF keeps for one VF.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PfView {
    cts: bool,
    api: u32,
    mac: Option<[u8; 6]>,
    mc: Vec<u16>,
    vlans: BTreeSet<u16>,
    max_frame: Option<u32>,
    xcast: Option<u32>,
}

/// The VF's mailbox registers with an ixgbe PF answering behind them.
#[derive(Default)]
struct PfModel {
    mem: [u32; MBX_WORDS],
    ctrl: u32,
    pf: PfView,
    /// When set, the next snoop sees every access (the trap's vantage).
    snoop: Option<Snoop>,
    polls: u32,
}

impl PfModel {
    fn respond(&mut self) {
        let m = self.mem;
        let kind = m[0] & msg::TYPE_MASK;
        let info = (m[0] >> msg::INFO_SHIFT) & 0xff;
        let pf = &mut self.pf;
        let ack = |ok: bool| kind | if ok { msg::ACK } else { msg::NACK } | msg::CTS;
        let mut reply = [0u32; MBX_WORDS];
        reply[0] = match kind {
            msg::RESET => {
                *pf = PfView {
                    cts: true,
                    ..PfView::default()
                };
                kind | msg::ACK
            }
            _ if !pf.cts => kind | msg::NACK,
            msg::API_NEGOTIATE => ack(m[1] <= API_15 && m[1] != 1).then_some_api(pf, m[1]),
            msg::SET_MAC_ADDR => {
                pf.mac = Some([
                    m[1] as u8,
                    (m[1] >> 8) as u8,
                    (m[1] >> 16) as u8,
                    (m[1] >> 24) as u8,
                    m[2] as u8,
                    (m[2] >> 8) as u8,
                ]);
                ack(true)
            }
            msg::SET_MULTICAST if info as usize <= 30 => {
                pf.mc = (0..info as usize)
                    .map(|i| (m[1 + i / 2] >> (16 * (i % 2))) as u16)
                    .collect();
                ack(true)
            }
            msg::SET_VLAN => {
                let vid = (m[1] & 0xfff) as u16;
                if info != 0 {
                    pf.vlans.insert(vid);
                } else {
                    pf.vlans.remove(&vid);
                }
                ack(true)
            }
            msg::SET_LPE => {
                pf.max_frame = Some(m[1]);
                ack(true)
            }
            msg::GET_QUEUES if pf.api >= API_11 => {
                reply[1] = 2;
                reply[2] = 2;
                ack(true)
            }
            msg::UPDATE_XCAST_MODE if pf.api >= API_12 => {
                pf.xcast = Some(m[1]);
                ack(true)
            }
            _ => ack(false),
        };
        self.mem = reply;
        self.ctrl |= ctrl::PFACK | ctrl::PFSTS;
    }
}

trait ThenApi {
    fn then_some_api(self, pf: &mut PfView, api: u32) -> u32;
}

impl ThenApi for u32 {
    fn then_some_api(self, pf: &mut PfView, api: u32) -> u32 {
        if self & msg::ACK != 0 {
            pf.api = api;
        }
        self
    }
}

impl RegIo for PfModel {
    fn read32(&mut self, off: u32) -> u32 {
        let v = if off == M.mbx_ctrl {
            let v = self.ctrl;
            self.ctrl &= !ctrl::R2C; // read-to-clear
            v
        } else if off >= M.mbx_mem && off < M.mbx_mem + 64 {
            self.mem[((off - M.mbx_mem) / 4) as usize]
        } else {
            0
        };
        if let Some(s) = &mut self.snoop {
            s.on_read(M, Family::Ixgbe, off, v);
        }
        v
    }

    fn write32(&mut self, off: u32, v: u32) {
        if let Some(s) = &mut self.snoop {
            s.on_write(M, off, v);
        }
        if off == M.mbx_ctrl {
            if v & ctrl::VFU != 0 {
                self.ctrl |= ctrl::VFU;
            }
            if v & (ctrl::REQ | ctrl::ACK) != 0 {
                self.ctrl &= !ctrl::VFU;
            }
            if v & ctrl::REQ != 0 {
                self.respond();
            }
        } else if off >= M.mbx_mem && off < M.mbx_mem + 64 {
            self.mem[((off - M.mbx_mem) / 4) as usize] = v;
        }
    }

    fn delay_us(&mut self, _: u32) {
        self.polls += 1;
    }
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

/// What ixgbevf does after a reset, with some configuration on top.
fn guest_driver_session(pf: &mut PfModel) {
    send(pf, &[msg::RESET]).unwrap();
    send(pf, &[msg::API_NEGOTIATE, API_15]).unwrap();
    let q = send(pf, &[msg::GET_QUEUES]).unwrap();
    assert_eq!((q[1], q[2]), (2, 2));
    send(pf, &[msg::SET_MAC_ADDR, 0x5634_1202, 0x9a78]).unwrap();
    send(pf, &[msg::SET_LPE, 9018]).unwrap();
    send(pf, &[msg::SET_MULTICAST | 3 << 16, 0x0bbb_0aaa, 0x0ccc]).unwrap();
    for vid in [10, 20, 30] {
        send(pf, &[msg::SET_VLAN | 1 << 16, vid]).unwrap();
    }
    send(pf, &[msg::SET_VLAN, 20]).unwrap();
    send(pf, &[msg::UPDATE_XCAST_MODE, 2]).unwrap();
}

#[test]
fn snooped_log_replays_to_the_same_pf_state() {
    let mut src = PfModel {
        snoop: Some(Snoop::default()),
        ..Default::default()
    };
    guest_driver_session(&mut src);
    let log = src.snoop.as_ref().unwrap().log;
    assert_eq!(log.api, Some(API_15));
    assert_eq!(log.vlan_ids().collect::<Vec<_>>(), [10, 30]);
    let mut dst = PfModel::default();
    let (accepted, sent) = replay_log(&mut dst, M, Family::Ixgbe, &log).unwrap();
    assert_eq!(accepted, log, "the destination PF accepted every request");
    assert_eq!(
        dst.pf, src.pf,
        "the destination PF holds the source's filters"
    );
    assert_eq!(
        sent,
        1 + 1 + 1 + 1 + 1 + 2 + 1,
        "RESET, API, MAC, LPE, MC, 2 VLANs, XCAST"
    );
    assert_eq!(
        dst.ctrl & ctrl::R2C,
        0,
        "no status bit left for the guest to see"
    );
    println!("replay: {sent} messages, {} mailbox polls", dst.polls);
}

#[test]
fn api_gates_are_respected_on_replay() {
    // An API 1.1 guest could not set xcast mode: the log holds none.
    let mut src = PfModel {
        snoop: Some(Snoop::default()),
        ..Default::default()
    };
    send(&mut src, &[msg::RESET]).unwrap();
    send(&mut src, &[msg::API_NEGOTIATE, API_11]).unwrap();
    assert!(send(&mut src, &[msg::UPDATE_XCAST_MODE, 2]).is_err());
    let log = src.snoop.unwrap().log;
    assert_eq!((log.api, log.xcast), (Some(API_11), None));
    let mut dst = PfModel::default();
    replay_log(&mut dst, M, Family::Ixgbe, &log).unwrap();
    assert_eq!(dst.pf.api, API_11);
}

#[test]
fn malicious_guest_keeps_the_log_bounded_and_valid() {
    let mut pf = PfModel {
        snoop: Some(Snoop::default()),
        ..Default::default()
    };
    guest_driver_session(&mut pf);
    let before = pf.snoop.as_ref().unwrap().log;
    // Unknown types, an oversized multicast count, a REQ with nothing new
    // written, all NACKed by the PF: the log does not move.
    assert!(send(&mut pf, &[0x7f]).is_err());
    assert!(send(&mut pf, &[msg::SET_MULTICAST | 200 << 16]).is_err());
    pf.write32(M.mbx_ctrl, ctrl::REQ);
    pf.read32(M.mbx_mem);
    let after = pf.snoop.as_ref().unwrap().log;
    assert_eq!(after.mc_count, before.mc_count);
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
    let want: Vec<u16> = pf.pf.vlans.iter().copied().collect();
    assert_eq!(log.vlan_ids().collect::<Vec<_>>(), want);
    // A half-written message: words written, no REQ. Nothing is logged.
    pf.write32(M.mbx_mem, msg::SET_MAC_ADDR);
    pf.write32(M.mbx_mem + 4, 0xdead_beef);
    assert_eq!(pf.snoop.as_ref().unwrap().log.mac, log.mac);
}

#[test]
fn a_request_in_flight_is_not_logged() {
    let mut pf = PfModel {
        snoop: Some(Snoop::default()),
        ..Default::default()
    };
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
    let mut pf = PfModel {
        snoop: Some(Snoop::default()),
        ..Default::default()
    };
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
