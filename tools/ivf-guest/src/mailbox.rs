// SPDX-License-Identifier: GPL-2.0

//! The igb VF side of the PF mailbox (igbvf's mbx.c, as a sketch of it):
//! lock with VFU, write VMBMEM, REQ; wait PFACK; wait PFSTS, read, ACK.
//! Read-to-clear bits are accumulated in a shadow, as the VF driver does.

use std::time::{Duration, Instant};

use ivf_common::regs::IGB;
use ivf_vfio::Bar;

const REQ: u32 = 1 << 0;
const ACK: u32 = 1 << 1;
const VFU: u32 = 1 << 2;
const PFSTS: u32 = 1 << 4;
const PFACK: u32 = 1 << 5;
const RSTI: u32 = 1 << 6;
const RSTD: u32 = 1 << 7;
const R2C: u32 = PFSTS | PFACK | RSTD;

const MSG_RESET: u32 = 0x01;
const MSG_SET_MAC: u32 = 0x02;
const MSGTYPE_ACK: u32 = 0x8000_0000;
const MSGTYPE_NACK: u32 = 0x4000_0000;

const TIMEOUT: Duration = Duration::from_secs(2);

/// A failed mailbox exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum MailboxError {
    /// The PF did not answer in time; `what` was awaited.
    Timeout(&'static str),
    /// The PF refused the request.
    Nack(u32),
    /// The PF's reply was not for our request.
    Unexpected(u32),
}

impl std::fmt::Display for MailboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailboxError::Timeout(w) => write!(f, "PF did not {w} within {TIMEOUT:?}"),
            MailboxError::Nack(m) => write!(f, "PF refused message {m:#x}"),
            MailboxError::Unexpected(m) => write!(f, "unexpected PF reply {m:#010x}"),
        }
    }
}

struct Mbx<'b> {
    bar: &'b Bar,
    shadow: u32,
}

impl Mbx<'_> {
    fn read(&mut self) -> u32 {
        let v = self.bar.read32(IGB.mbx_ctrl as usize) | self.shadow;
        self.shadow |= v & R2C;
        v
    }

    fn take(&mut self, bit: u32) -> bool {
        let set = self.read() & bit != 0;
        self.shadow &= !bit;
        set
    }

    fn wait(&mut self, bit: u32, what: &'static str) -> Result<(), MailboxError> {
        let start = Instant::now();
        while !self.take(bit) {
            if start.elapsed() > TIMEOUT {
                return Err(MailboxError::Timeout(what));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        Ok(())
    }

    fn lock(&mut self) -> Result<(), MailboxError> {
        for _ in 0..10 {
            self.bar.write32(IGB.mbx_ctrl as usize, VFU);
            if self.read() & VFU != 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(MailboxError::Timeout("release the mailbox"))
    }

    /// Sends `msg`, returns the reply (ACK or NACK: the caller judges).
    fn exchange(&mut self, msg: &[u32], reply_words: usize) -> Result<Vec<u32>, MailboxError> {
        self.lock()?;
        self.take(PFACK);
        self.take(PFSTS);
        for (i, w) in msg.iter().enumerate() {
            self.bar.write32(IGB.mbx_mem as usize + 4 * i, *w);
        }
        self.bar.write32(IGB.mbx_ctrl as usize, REQ);
        self.wait(PFACK, "acknowledge the request")?;
        self.wait(PFSTS, "reply")?;
        self.lock()?;
        let reply: Vec<u32> = (0..reply_words)
            .map(|i| self.bar.read32(IGB.mbx_mem as usize + 4 * i))
            .collect();
        self.bar.write32(IGB.mbx_ctrl as usize, ACK);
        if reply[0] & 0xffff != msg[0] & 0xffff {
            return Err(MailboxError::Unexpected(reply[0]));
        }
        Ok(reply)
    }

    fn request(&mut self, msg: &[u32], reply_words: usize) -> Result<Vec<u32>, MailboxError> {
        let reply = self.exchange(msg, reply_words)?;
        let head = reply[0];
        if head & MSGTYPE_NACK != 0 {
            return Err(MailboxError::Nack(msg[0]));
        }
        if head & MSGTYPE_ACK == 0 {
            return Err(MailboxError::Unexpected(head));
        }
        Ok(reply)
    }
}

/// After CTRL.RST: waits for the PF's reset to finish, sends RESET and
/// returns the MAC address of the reply; `None` when the PF has none for
/// this VF (a NACKed RESET: the VF must pick one and SET_MAC_ADDR it).
pub(crate) fn reset(bar: &Bar) -> Result<Option<[u8; 6]>, MailboxError> {
    let mut m = Mbx { bar, shadow: 0 };
    let start = Instant::now();
    // As igbvf: wait while reset indications are asserted.
    while m.take(RSTI | RSTD) {
        if start.elapsed() > TIMEOUT {
            return Err(MailboxError::Timeout("finish the VF reset"));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let r = m.exchange(&[MSG_RESET], 3)?;
    if r[0] & MSGTYPE_NACK != 0 {
        return Ok(None);
    }
    if r[0] & MSGTYPE_ACK == 0 {
        return Err(MailboxError::Unexpected(r[0]));
    }
    let mut mac = [0u8; 6];
    mac[..4].copy_from_slice(&r[1].to_le_bytes());
    mac[4..].copy_from_slice(&r[2].to_le_bytes()[..2]);
    Ok(Some(mac))
}

/// SET_MAC_ADDR: asks the PF to filter `mac` for this VF.
pub(crate) fn set_mac(bar: &Bar, mac: [u8; 6]) -> Result<(), MailboxError> {
    let mut m = Mbx { bar, shadow: 0 };
    let w1 = u32::from_le_bytes(mac[..4].try_into().unwrap());
    let w2 = u32::from(u16::from_le_bytes([mac[4], mac[5]]));
    m.request(&[MSG_SET_MAC, w1, w2], 1).map(|_| ())
}

const MSG_SET_MULTICAST: u32 = 0x03;
const MSG_SET_VLAN: u32 = 0x04;

/// SET_MULTICAST: asks the PF to accept the multicast `hashes` (at most 30).
pub(crate) fn set_multicast(bar: &Bar, hashes: &[u16]) -> Result<(), MailboxError> {
    let mut m = Mbx { bar, shadow: 0 };
    let n = hashes.len().min(30);
    let mut w = vec![MSG_SET_MULTICAST | (n as u32) << 16];
    for pair in hashes[..n].chunks(2) {
        w.push(u32::from(pair[0]) | pair.get(1).map_or(0, |h| u32::from(*h) << 16));
    }
    m.request(&w, 1).map(|_| ())
}

/// SET_VLAN: asks the PF to add (or remove) VLAN `vid` for this VF.
pub(crate) fn set_vlan(bar: &Bar, vid: u16, add: bool) -> Result<(), MailboxError> {
    let mut m = Mbx { bar, shadow: 0 };
    m.request(&[MSG_SET_VLAN | u32::from(add) << 16, u32::from(vid)], 1)
        .map(|_| ())
}
