// SPDX-License-Identifier: GPL-2.0

//! `save`, `load`, `inspect` and `check`: the device-state stream on disk.

use std::path::Path;

use serde::Serialize;

use ivf_common::admin::AdminConfig;
use ivf_common::hal;
use ivf_common::hal::DeviceState;
use ivf_common::ids::{Family, VfDevice};
use ivf_common::mbx::MbxLog;
use ivf_common::regs::regmap;
use ivf_common::state::{next_frame, section_name, DeviceShape, Frame, FrameSequence};
use ivf_common::stream::{self, DeviceCaps, StreamError};
use ivf_vfio::sysfs::{Bdf, PciDevice};
use ivf_vfio::uapi::mig;
use ivf_vfio::{read_data, write_data, Device};

use crate::files::{self, Output};
use crate::{holders_text, in_use, open_failure, print_json, Exit, Failure, DRIVER};

/// The VF at `bdf` as sysfs shows it, if it is one of ours, bound to our
/// driver: the checks of a VF that need no open (which resets it), with
/// the documented exit codes. Whether somebody holds it is asked last,
/// just before the open ([`open_ours`]).
fn ours(bdf: Bdf) -> Result<(PciDevice, &'static VfDevice), Failure> {
    let pci = PciDevice::open(bdf)?;
    let Some(vf) = pci.supported_vf() else {
        return Err(Failure::new(
            Exit::Unsupported,
            format!(
                "{bdf} is {:04x}:{:04x}, not a VF that {DRIVER} supports",
                pci.vendor, pci.device
            ),
        ));
    };
    if pci.driver.as_deref() != Some(DRIVER) {
        return Err(Failure::new(
            Exit::Unsupported,
            format!(
                "{bdf} is bound to {}, not {DRIVER}: echo {DRIVER} > /sys/bus/pci/devices/{bdf}/driver_override, then rebind",
                pci.driver.as_deref().unwrap_or("no driver")
            ),
        ));
    }
    Ok((pci, vf))
}

/// Opens the VF [`ours`] found, unless somebody holds it: the last step
/// of `save` and `load` before they touch it, every other check made.
fn open_ours(pci: &PciDevice) -> Result<Device, Failure> {
    let bdf = pci.bdf;
    if let Some(who) = holders_text(pci) {
        return Err(in_use(bdf, &who));
    }
    // Another vfmig may have passed that check at the same moment: the
    // kernel lets one of us in, and the other learns it only now.
    Device::open_default(bdf).map_err(|e| open_failure(bdf, e, || holders_text(pci)))
}

/// What the driver knows of the VF `pci` (a `vf`) when it judges a stream,
/// from sysfs.
fn caps_of(pci: &PciDevice, vf: &VfDevice) -> Result<DeviceCaps, Failure> {
    Ok(DeviceCaps {
        family: vf.family,
        vendor: pci.vendor,
        device: pci.device,
        revision: pci.revision()?,
        max_queue_pairs: regmap(vf.family).max_queue_pairs as u16,
        features: 0,
    })
}

/// Every frame of a file, or the first error with its offset.
///
/// The frames must follow the grammar the driver enforces
/// ([`FrameSequence`]), with the shape of a device of the first frame's
/// family (of a family we do not know, the first frame's own: that it is
/// no device here is `check`'s to say). The sequence comes back, so a
/// caller that needs a complete stream asks it with `finish`.
fn frames(bytes: &[u8]) -> Result<(Vec<Frame>, FrameSequence), (usize, StreamError)> {
    let mut out = Vec::new();
    let mut seq = None;
    let mut at = 0;
    while at < bytes.len() {
        let (f, len) = next_frame(&bytes[at..]).map_err(|e| (at, e))?;
        let shape =
            Family::from_code(f.header.family).map_or(f.shape, |fam| DeviceShape::of(regmap(fam)));
        seq.get_or_insert(FrameSequence::new(shape))
            .accept(&f)
            .map_err(|e| (at, e))?;
        out.push(f);
        at += len;
    }
    match seq {
        Some(seq) => Ok((out, seq)),
        None => Err((
            0,
            StreamError::Truncated {
                need: stream::HEADER_LEN,
                have: 0,
            },
        )),
    }
}

/// The frames of a file that the driver would load: [`frames`], complete.
fn complete_frames(bytes: &[u8]) -> Result<Vec<Frame>, (usize, StreamError)> {
    let (fs, seq) = frames(bytes)?;
    seq.finish().map_err(|e| (bytes.len(), e))?;
    Ok(fs)
}

/// What the driver decides about a file for this device: the bytes through
/// [`FrameSequence::feed`] (rust/lm.rs `check_frames`), a frame cut short
/// at the end refused, and at the end the state frame's values and whether
/// it came (`load`). The first refusal, with its offset; the driver refuses
/// the rest of the stream after it.
fn judge(bytes: &[u8], caps: &DeviceCaps, map: &ivf_common::regs::RegMap) -> Result<(), String> {
    let mut seq = FrameSequence::new(DeviceShape::of(map));
    let mut at = 0;
    let refused = |at: usize, e: StreamError| format!("at byte {at}: {e} (errno {})", e.errno());
    seq.feed(bytes, &mut at, caps).map_err(|e| refused(at, e))?;
    if let Some(e) = FrameSequence::unfinished(bytes, at) {
        return Err(refused(at, e));
    }
    seq.finish()
        .map_err(|e| format!("at the end: {e} (errno {})", e.errno()))?;
    // The state frame, as `load` finds it again.
    let mut state = None;
    let mut at = 0;
    while at < bytes.len() {
        let (f, len) = next_frame(&bytes[at..]).map_err(|e| refused(at, e))?;
        if f.state.is_some() {
            state = f.state;
        }
        at += len;
    }
    if let Some(st) = &state {
        hal::validate(st, map).map_err(|e| format!("state frame: {e}"))?;
    }
    Ok(())
}

fn stream_failure(what: &str, at: usize, e: StreamError) -> Failure {
    Failure::new(
        Exit::Refused,
        format!("{what}: at byte {at}: {e} (errno {})", e.errno()),
    )
}

/// `save`: everything that can fail without the VF (the destination, its
/// temporary file, the VF's identity and binding, its holders) fails
/// before the VF is opened, and so stopped and reset.
pub(crate) fn save(bdf: Bdf, output: &Path) -> Result<(), Failure> {
    let out = Output::create(output)?;
    let (pci, _) = ours(bdf)?;
    let dev = open_ours(&pci)?;
    let mut fd = dev
        .set_mig_state(mig::STOP_COPY)?
        .ok_or_else(|| Failure::new(Exit::Other, "the driver gave no data fd for STOP_COPY"))?;
    let mut bytes = Vec::new();
    read_data(&mut fd, &mut bytes)?;
    let n = complete_frames(&bytes)
        .map_err(|(at, e)| stream_failure("the driver's own stream", at, e))?
        .len();
    out.commit(&bytes)?;
    outln!(
        "saved {} bytes ({n} frames) of {bdf} to {} (mode {:04o})",
        bytes.len(),
        output.display(),
        files::OUTPUT_MODE
    );
    Ok(())
}

/// `load`: every check that needs no device is made before the VF is
/// opened (which resets it): the file ([`files::read_stream`], then its
/// frames), the VF's identity and binding, the file against the VF as
/// `check` judges it ([`judge`]), its holders. A file refused there
/// leaves the VF unopened; the driver then judges again, and alone can
/// refuse what sysfs does not show.
pub(crate) fn load(bdf: Bdf, input: &Path) -> Result<(), Failure> {
    let bytes = files::read_stream(input)?;
    let cannot = format!("{} cannot be loaded into {bdf}", input.display());
    complete_frames(&bytes).map_err(|(at, e)| stream_failure(&cannot, at, e))?;
    let (pci, vf) = ours(bdf)?;
    judge(&bytes, &caps_of(&pci, vf)?, regmap(vf.family))
        .map_err(|why| Failure::new(Exit::Refused, format!("{cannot}: {why}")))?;
    let dev = open_ours(&pci)?;
    let refused = |e: ivf_vfio::Error| {
        Failure::new(
            Exit::Refused,
            format!("{bdf} refused {}: {e}", input.display()),
        )
    };
    let mut fd = dev
        .set_mig_state(mig::RESUMING)?
        .ok_or_else(|| Failure::new(Exit::Other, "the driver gave no data fd for RESUMING"))?;
    write_data(&mut fd, &bytes).map_err(refused)?;
    dev.set_mig_state(mig::STOP).map_err(refused)?;
    dev.set_mig_state(mig::RUNNING)?;
    outln!(
        "loaded {} bytes into {bdf}; it ran until vfmig closed it",
        bytes.len()
    );
    Ok(())
}

#[derive(Serialize)]
struct SectionView {
    tag: u16,
    name: &'static str,
    mandatory: bool,
    len: usize,
}

#[derive(Serialize)]
struct FrameView {
    kind: &'static str,
    format: String,
    family: String,
    vendor: String,
    device: String,
    revision: u8,
    queue_pairs: u16,
    features: String,
    total_len: u32,
    crc32c: String,
    sections: Vec<SectionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<StateView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pf: Option<PfView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<AdminView>,
}

/// The administrator's settings at the PF, in words.
#[derive(Serialize)]
struct AdminView {
    mac: String,
    vlan: u16,
    qos: u8,
    spoofchk: bool,
    trust: bool,
    link_state: &'static str,
    min_tx_rate: u32,
    max_tx_rate: u32,
}

fn admin_view(a: &AdminConfig) -> AdminView {
    AdminView {
        mac: mac_str(&a.mac),
        vlan: a.vlan,
        qos: a.qos,
        spoofchk: a.spoofchk,
        trust: a.trusted,
        link_state: ["auto", "enable", "disable"][a.link_state.min(2) as usize],
        min_tx_rate: a.min_tx_rate,
        max_tx_rate: a.max_tx_rate,
    }
}

/// The VF's requests the PF accepted, in words.
#[derive(Serialize)]
struct PfView {
    reset_seen: bool,
    mac: Option<String>,
    mailbox_api: Option<u32>,
    max_frame: Option<u32>,
    xcast_or_promisc: Option<u32>,
    multicast_hashes: Vec<String>,
    vlans: Vec<u16>,
    extra_macs: Vec<String>,
    ignored_requests: u32,
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn pf_view(l: &MbxLog) -> PfView {
    PfView {
        reset_seen: l.flags & 1 != 0,
        mac: l.mac.as_ref().map(mac_str),
        mailbox_api: l.api,
        max_frame: l.max_frame,
        xcast_or_promisc: l.xcast,
        multicast_hashes: l.mc[..l.mc_count as usize]
            .iter()
            .map(|h| format!("{h:#05x}"))
            .collect(),
        vlans: l.vlan_ids().collect(),
        extra_macs: l.macvlans.iter().flatten().map(mac_str).collect(),
        ignored_requests: l.ignored,
    }
}

#[derive(Serialize)]
struct QueueView {
    queue: usize,
    rx: [String; 7],
    tx: [String; 8],
}

#[derive(Serialize)]
struct StateView {
    queues: Vec<QueueView>,
    eims: String,
    eiac: String,
    eiam: String,
    ivar: Vec<String>,
    ivar_misc: String,
    eitr: Vec<String>,
}

fn hex(v: u32) -> String {
    format!("{v:#010x}")
}

fn state_view(s: &DeviceState, shape: &DeviceShape) -> StateView {
    StateView {
        queues: (0..s.queue_pairs as usize)
            .map(|i| {
                let (r, t) = (&s.rx[i], &s.tx[i]);
                QueueView {
                    queue: i,
                    rx: r.words().map(hex),
                    tx: t.words().map(hex),
                }
            })
            .collect(),
        eims: hex(s.irq.eims),
        eiac: hex(s.irq.eiac),
        eiam: hex(s.irq.eiam),
        ivar: s
            .irq
            .ivar
            .iter()
            .take(shape.ivar_count as usize)
            .map(|v| hex(*v))
            .collect(),
        ivar_misc: hex(s.irq.ivar_misc),
        eitr: s
            .irq
            .eitr
            .iter()
            .take(shape.vectors as usize)
            .map(|v| hex(*v))
            .collect(),
    }
}

fn frame_view(bytes: &[u8], f: &Frame) -> FrameView {
    let h = &f.header;
    let (_, sections) = stream::parse(bytes).expect("frame parsed already");
    FrameView {
        kind: if f.state.is_some() {
            "state"
        } else {
            "compatibility"
        },
        format: format!("{}.{}", h.major, h.minor),
        family: Family::from_code(h.family)
            .map(Family::name)
            .unwrap_or("unknown")
            .into(),
        vendor: format!("{:04x}", h.vendor),
        device: format!("{:04x}", h.device),
        revision: h.revision,
        queue_pairs: h.queue_pairs,
        features: format!("{:#x}", h.features),
        total_len: h.total_len,
        crc32c: format!("{:#010x}", h.crc),
        sections: sections
            .map(|s| SectionView {
                tag: s.tag,
                name: section_name(s.tag),
                mandatory: s.mandatory(),
                len: s.payload.len(),
            })
            .collect(),
        state: f.state.as_ref().map(|s| state_view(s, &f.shape)),
        pf: f.pf.mbx.as_ref().map(pf_view),
        admin: f.pf.admin.as_ref().map(admin_view),
    }
}

fn views(bytes: &[u8]) -> Result<Vec<FrameView>, Failure> {
    let (fs, _) = frames(bytes).map_err(|(at, e)| stream_failure("invalid stream", at, e))?;
    let mut at = 0;
    Ok(fs
        .iter()
        .map(|f| {
            let len = f.header.total_len as usize;
            let v = frame_view(&bytes[at..at + len], f);
            at += len;
            v
        })
        .collect())
}

pub(crate) fn inspect(path: &Path, json: bool) -> Result<(), Failure> {
    let bytes = files::read_stream(path)?;
    let vs = views(&bytes)?;
    if json {
        return print_json(&vs);
    }
    outln!(
        "{}: {} bytes, {} frames",
        path.display(),
        bytes.len(),
        vs.len()
    );
    for (i, v) in vs.iter().enumerate() {
        outln!(
            "frame {}: {} frame, format {}, {} family, device {}:{} rev {}, {} queue pairs, features {}, {} bytes, crc32c {}",
            i + 1, v.kind, v.format, v.family, v.vendor, v.device, v.revision, v.queue_pairs, v.features, v.total_len, v.crc32c
        );
        for s in &v.sections {
            outln!(
                "  section {:#06x} {:<7} {:<9} {} bytes",
                s.tag,
                s.name,
                if s.mandatory { "mandatory" } else { "optional" },
                s.len
            );
        }
        if let Some(st) = &v.state {
            for q in &st.queues {
                outln!(
                    "  queue {}: RX bal {} bah {} len {} srrctl {} head {} tail {} dctl {}",
                    q.queue,
                    q.rx[0],
                    q.rx[1],
                    q.rx[2],
                    q.rx[3],
                    q.rx[4],
                    q.rx[5],
                    q.rx[6]
                );
                outln!(
                    "           TX bal {} bah {} len {} head {} tail {} dctl {} wb {}:{}",
                    q.tx[0],
                    q.tx[1],
                    q.tx[2],
                    q.tx[3],
                    q.tx[4],
                    q.tx[5],
                    q.tx[7],
                    q.tx[6]
                );
            }
            outln!(
                "  irq: eims {} eiac {} eiam {} ivar [{}] ivar_misc {} eitr [{}]",
                st.eims,
                st.eiac,
                st.eiam,
                st.ivar.join(" "),
                st.ivar_misc,
                st.eitr.join(" ")
            );
        }
        if let Some(a) = &v.admin {
            outln!(
                "  admin: mac {} vlan {} qos {} spoofchk {} trust {} link {} tx rate {}..{} Mbit/s",
                a.mac,
                a.vlan,
                a.qos,
                a.spoofchk,
                a.trust,
                a.link_state,
                a.min_tx_rate,
                a.max_tx_rate
            );
        }
        if let Some(p) = &v.pf {
            outln!(
                "  pf: {} mac {} api {} max frame {} xcast {} multicast [{}] vlans {:?} extra macs [{}] ignored {}",
                if p.reset_seen { "reset seen," } else { "no reset seen," },
                p.mac.as_deref().unwrap_or("-"),
                p.mailbox_api.map_or("-".into(), |a| a.to_string()),
                p.max_frame.map_or("-".into(), |a| a.to_string()),
                p.xcast_or_promisc.map_or("-".into(), |a| a.to_string()),
                p.multicast_hashes.join(" "),
                p.vlans,
                p.extra_macs.join(" "),
                p.ignored_requests
            );
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Verdict {
    file: String,
    bdf: String,
    compatible: bool,
    reasons: Vec<String>,
}

pub(crate) fn check(path: &Path, bdf: Bdf, json: bool) -> Result<(), Failure> {
    let bytes = files::read_stream(path)?;
    let pci = PciDevice::open(bdf)?;
    let vf = pci.supported_vf().ok_or_else(|| {
        Failure::new(
            Exit::Unsupported,
            format!(
                "{bdf} is {:04x}:{:04x}, not a supported VF",
                pci.vendor, pci.device
            ),
        )
    })?;
    let map = regmap(vf.family);
    let caps = caps_of(&pci, vf)?;
    let mut reasons = Vec::new();
    if let Err(r) = judge(&bytes, &caps, map) {
        reasons.push(r);
    }
    if pci.driver.as_deref() != Some(DRIVER) {
        reasons.push(format!(
            "{bdf} is bound to {}, not {DRIVER}",
            pci.driver.as_deref().unwrap_or("no driver")
        ));
    }
    let v = Verdict {
        file: path.display().to_string(),
        bdf: bdf.to_string(),
        compatible: reasons.is_empty(),
        reasons,
    };
    if json {
        print_json(&v)?;
    } else if v.compatible {
        outln!(
            "{}: compatible with {bdf} ({} {})",
            v.file,
            vf.name,
            vf.family.name()
        );
    } else {
        outln!("{}: NOT compatible with {bdf}:", v.file);
        for r in &v.reasons {
            outln!("  - {r}");
        }
    }
    if v.compatible {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Refused,
            format!("{} cannot be loaded into {bdf}", v.file),
        ))
    }
}
