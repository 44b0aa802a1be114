// SPDX-License-Identifier: GPL-2.0

//! A log sent again through the destination VF's own mailbox, so that the
//! PF driver re-applies every filter itself.

use super::super::bytes::copy_into;
use super::super::hal::RegIo;
use super::super::ids::Family;
use super::super::regs::RegMap;
use super::log::MbxLog;
use super::proto::MBX_WORDS;
use super::vf::{MbxError, VfMailbox};

/// Replays `log` through the VF's mailbox; returns the log the PF accepted
/// (equal to `log` on success) and the messages sent.
pub fn replay_log(
    io: &mut impl RegIo,
    map: &RegMap,
    family: Family,
    log: &MbxLog,
) -> Result<(MbxLog, u32), MbxError> {
    let mut mbx = VfMailbox::new(io, map);
    let mut accepted = MbxLog::default();
    let mut sent = 0;
    log.replay(family, |m| {
        let reply = mbx.exchange(m)?;
        let mut req = [0u32; MBX_WORDS];
        copy_into(&mut req, &m.words[..m.len]);
        accepted.observe(family, &req, reply[0]);
        sent += 1;
        Ok(())
    })?;
    Ok((accepted, sent))
}
