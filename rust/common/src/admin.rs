// SPDX-License-Identifier: GPL-2.0

//! The administrator's settings for a VF, as the PF netdev reports them
//! (`ndo_get_vf_config`) and takes them (`ndo_set_vf_*`): forced MAC, port
//! VLAN and QoS, spoof checking, trust, link state, TX rates. Any SR-IOV PF
//! driver serves these; the stream carries them in the PF_ADMIN section.

use super::bytes::copy_into;

/// Encoded length of [`AdminConfig`].
pub const ADMIN_LEN: usize = 28;

/// One VF's administrator settings.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// The VF's MAC address as the PF knows it.
    pub mac: [u8; 6],
    /// Port VLAN (0: none).
    pub vlan: u16,
    /// Port VLAN priority.
    pub qos: u8,
    /// Spoof checking on.
    pub spoofchk: bool,
    /// Trusted VF.
    pub trusted: bool,
    /// Link state: 0 auto, 1 enable, 2 disable.
    pub link_state: u8,
    /// Port VLAN protocol (big-endian ethertype, as the netdev reports it).
    pub vlan_proto: u16,
    /// Minimum TX rate, Mbit/s.
    pub min_tx_rate: u32,
    /// Maximum TX rate, Mbit/s (0: unlimited).
    pub max_tx_rate: u32,
}

/// The settings the destination applies one `ndo_set_vf_*` at a time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum AdminField {
    /// `ndo_set_vf_mac`.
    Mac = 0,
    /// `ndo_set_vf_vlan` (VLAN, QoS, protocol).
    Vlan = 1,
    /// `ndo_set_vf_spoofchk`.
    SpoofChk = 2,
    /// `ndo_set_vf_trust`.
    Trust = 3,
    /// `ndo_set_vf_rate`.
    Rate = 4,
    /// `ndo_set_vf_link_state`.
    LinkState = 5,
}

impl AdminField {
    /// Every field, in the order they are applied.
    pub const ALL: [AdminField; 6] = [
        AdminField::Mac,
        AdminField::Vlan,
        AdminField::SpoofChk,
        AdminField::Trust,
        AdminField::Rate,
        AdminField::LinkState,
    ];

    /// The field's name, as `ip link` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            AdminField::Mac => "mac",
            AdminField::Vlan => "vlan",
            AdminField::SpoofChk => "spoofchk",
            AdminField::Trust => "trust",
            AdminField::Rate => "max_tx_rate",
            AdminField::LinkState => "state",
        }
    }
}

fn mac_u64(m: &[u8; 6]) -> u64 {
    m.iter().fold(0, |a, b| a << 8 | u64::from(*b))
}

impl AdminConfig {
    /// Whether `field` differs between `self` and `other`, with both values.
    pub fn differs(&self, other: &AdminConfig, field: AdminField) -> Option<(u64, u64)> {
        let (a, b) = match field {
            AdminField::Mac => (mac_u64(&self.mac), mac_u64(&other.mac)),
            AdminField::Vlan => (
                u64::from(self.vlan) | u64::from(self.qos) << 12 | u64::from(self.vlan_proto) << 16,
                u64::from(other.vlan)
                    | u64::from(other.qos) << 12
                    | u64::from(other.vlan_proto) << 16,
            ),
            AdminField::SpoofChk => (u64::from(self.spoofchk), u64::from(other.spoofchk)),
            AdminField::Trust => (u64::from(self.trusted), u64::from(other.trusted)),
            AdminField::Rate => (
                u64::from(self.min_tx_rate) << 32 | u64::from(self.max_tx_rate),
                u64::from(other.min_tx_rate) << 32 | u64::from(other.max_tx_rate),
            ),
            AdminField::LinkState => (u64::from(self.link_state), u64::from(other.link_state)),
        };
        (a != b).then_some((a, b))
    }

    /// The settings as bytes.
    pub fn encode(&self, out: &mut [u8; ADMIN_LEN]) {
        copy_into(&mut out[0..6], &self.mac);
        copy_into(&mut out[6..8], &self.vlan.to_le_bytes());
        out[8] = self.qos;
        out[9] = u8::from(self.spoofchk);
        out[10] = u8::from(self.trusted);
        out[11] = self.link_state;
        copy_into(&mut out[12..14], &self.vlan_proto.to_le_bytes());
        copy_into(&mut out[14..16], &[0, 0]);
        copy_into(&mut out[16..20], &self.min_tx_rate.to_le_bytes());
        copy_into(&mut out[20..24], &self.max_tx_rate.to_le_bytes());
        copy_into(&mut out[24..28], &[0; 4]);
    }

    /// Decodes [`AdminConfig::encode`]'s bytes; `None` if malformed.
    pub fn decode(b: &[u8]) -> Option<AdminConfig> {
        if b.len() != ADMIN_LEN || b[9] > 1 || b[10] > 1 || b[11] > 2 || b[8] > 7 {
            return None;
        }
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let vlan = u16_at(6);
        if vlan > 4095 {
            return None;
        }
        Some(AdminConfig {
            mac: [b[0], b[1], b[2], b[3], b[4], b[5]],
            vlan,
            qos: b[8],
            spoofchk: b[9] == 1,
            trusted: b[10] == 1,
            link_state: b[11],
            vlan_proto: u16_at(12),
            min_tx_rate: u32_at(16),
            max_tx_rate: u32_at(20),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_diffs() {
        let a = AdminConfig {
            mac: [2, 0, 0, 0, 0, 1],
            vlan: 42,
            qos: 3,
            spoofchk: true,
            trusted: false,
            link_state: 1,
            vlan_proto: 0x0081,
            min_tx_rate: 0,
            max_tx_rate: 100,
        };
        let mut b = [0u8; ADMIN_LEN];
        a.encode(&mut b);
        assert_eq!(AdminConfig::decode(&b), Some(a));
        let mut bad = b;
        bad[9] = 7;
        assert_eq!(AdminConfig::decode(&bad), None);
        let c = AdminConfig {
            spoofchk: false,
            ..a
        };
        assert_eq!(a.differs(&c, AdminField::SpoofChk), Some((1, 0)));
        assert_eq!(a.differs(&c, AdminField::Rate), None);
    }
}
