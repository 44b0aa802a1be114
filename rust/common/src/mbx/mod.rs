// SPDX-License-Identifier: GPL-2.0

//! The VF's own requests to its PF, as the PF-side state channel keeps them:
//! a canonical, bounded log of what the PF accepted, built by watching the
//! VF's mailbox, carried in the stream, and replayed on the destination
//! through the destination VF's own mailbox, so that the PF driver itself
//! re-applies every filter (Documentation/pf-channel.rst).
//!
//! Canonical means that the log holds the *effect* of the requests, not the
//! requests: the latest MAC, the current multicast set, the VLAN set, and so
//! on. Its size is fixed whatever the guest sends, so a flood of requests
//! costs nothing, and malformed requests (which the PF NACKs) are never
//! logged: only a request the PF answered with ACK changes the log.
//!
//! One concern per file: [`proto`] the wire (message words, control
//! bits), [`log`] the canonical log and its stream encoding, [`snoop`] the
//! trap's view of the VF's traffic, [`vf`] the VF side of the mailbox
//! (what a VF driver does), [`replay`] a log sent again through it,
//! [`forget`] the PF made to drop what a guest set.

pub mod forget;
pub mod log;
pub mod proto;
pub mod replay;
pub mod snoop;
pub mod vf;

pub use forget::{forget, Forgotten};
pub use log::{MbxLog, Uncarried, ENCODED_LEN};
pub use proto::{
    accepted, ctrl, mac_of, mac_words, msg, Message, VlanOp, MAX_MACVLANS, MAX_MC, MBX_WORDS,
};
pub use replay::replay_log;
pub use snoop::Snoop;
pub use vf::{Backoff, MbxError, VfMailbox, MBX_POLL_US, MBX_TIMEOUT_US};

#[cfg(test)]
mod tests;
