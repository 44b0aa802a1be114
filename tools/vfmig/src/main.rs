// SPDX-License-Identifier: GPL-2.0

//! `vfmig`: list Intel SR-IOV VFs, show what the intel_vf_vfio_pci driver
//! offers for them, and (as the driver grows) save, load, inspect and
//! migrate their state.
//!
//! Exit codes: [`exit::Exit`], the one table of their values, names and
//! `--help` lines (stable; Documentation/vfmig.rst lists them too).
//!
//! vfmig runs as root on paths and devices that others name (issue 25):
//! files are read and written as [`files`] says, and everything printed
//! goes through [`term`], which escapes what the terminal would act on.

// Output goes through `term` (escaped), never straight to stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod exit;
mod files;
#[macro_use]
mod term;
mod doctor;
mod migrate_cmd;
mod stream_cmds;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use ivf_common::ids::SUPPORTED_VFS;
use ivf_vfio::sysfs::{self, Bdf, DirtyTracking, PciDevice};
use ivf_vfio::MigrationFlags;

pub(crate) use exit::Exit;

/// The driver `vfmig` works with.
pub(crate) const DRIVER: &str = "intel_vf_vfio_pci";

#[derive(Parser)]
#[command(name = "vfmig", version, about = "Live migration of Intel SR-IOV VFs bound to intel_vf_vfio_pci", after_help = Exit::help_text())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the supported VFs on this host: address, PF, family, driver,
    /// IOMMU group, vfio cdev and migration capabilities.
    ///
    /// Capabilities are read from the driver by opening each idle VF bound
    /// to intel_vf_vfio_pci (this resets the idle VF, as any VFIO open does);
    /// VFs in use show "busy". Example: `vfmig list --json`
    #[command(after_help = Exit::help_text())]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one VF in detail. Example: `vfmig info 0000:01:10.0`
    #[command(after_help = Exit::help_text())]
    Info {
        /// PCI address of the VF (DDDD:BB:DD.F).
        bdf: Bdf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop a VF and save its device state to a file.
    ///
    /// Moves the VF through RUNNING_P2P and STOP to STOP_COPY and writes the
    /// data to FILE, mode 0600 (atomically: a temporary file of its own,
    /// renamed over FILE). FILE must be a regular file or not exist (a
    /// symbolic link, a directory or a device is refused), which is checked
    /// before the VF is opened. The VF must not be in use. When vfmig exits
    /// it closes the VF, which resets it, as any VFIO close does. Example:
    /// `vfmig save 0000:01:10.0 -o vf0.state`
    #[command(after_help = Exit::help_text())]
    Save {
        /// PCI address of the VF.
        bdf: Bdf,
        /// Where to write the state.
        #[arg(short, long, value_name = "FILE")]
        output: std::path::PathBuf,
    },
    /// Load a saved state into a VF (RESUMING, then STOP, then RUNNING).
    ///
    /// vfmig first checks the file as `check` does, without opening the
    /// VF: a corrupt, truncated, foreign or future-version file is refused
    /// with exit code 6 and the reason, and the VF is left unopened. The
    /// driver then checks the whole stream again before touching the
    /// device. The VF is closed (and so reset) when vfmig exits: use this to
    /// prove a destination accepts a stream; a VMM keeps the device open.
    /// Example: `vfmig load 0000:01:10.2 -i vf0.state`
    #[command(after_help = Exit::help_text())]
    Load {
        /// PCI address of the VF.
        bdf: Bdf,
        /// The saved state.
        #[arg(short, long, value_name = "FILE")]
        input: std::path::PathBuf,
    },
    /// Decode a saved state: header, frames and sections, in words.
    /// Example: `vfmig inspect vf0.state --json`
    #[command(after_help = Exit::help_text())]
    Inspect {
        /// The saved state.
        file: std::path::PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Say, without opening the device, whether a VF could load a saved
    /// state, and why not. Example: `vfmig check vf0.state 0000:01:10.2`
    #[command(after_help = Exit::help_text())]
    Check {
        /// The saved state.
        file: std::path::PathBuf,
        /// PCI address of the destination VF.
        bdf: Bdf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Live-migrate a running VF guest from SRC to DST, as a VMM does.
    ///
    /// vfmig is the VMM: it starts the userspace guest driver (ivf-guest)
    /// on SRC and runs it in a vCPU thread; then DMA logging on, SRC to
    /// PRE_COPY with its compatibility frame loaded into DST at once (a DST
    /// that cannot load SRC refuses before SRC stops), rounds of copying
    /// the dirty pages (device report + guest CPU writes) until a round is
    /// at most --threshold pages, then the stop: quiesce, save, last copy,
    /// load into DST (with the PF mailbox replay), the guest adopted on DST,
    /// RUNNING. A progress line per round, then a summary: rounds, memory
    /// and device bytes moved, downtime split, packets lost, verdict. Any
    /// failure leaves the guest running on SRC (exit codes 5 to 8).
    ///
    /// Examples:
    ///   vfmig migrate 0000:01:10.0 0000:01:10.2
    ///   vfmig migrate 0000:01:10.0 0000:01:10.2 --traffic eth0 --rate 300 --before 2 --after 2
    ///   vfmig migrate 0000:01:10.0 0000:01:10.2 --traffic eth0 --json
    #[command(after_help = Exit::help_text(), verbatim_doc_comment)]
    Migrate(migrate_cmd::MigrateArgs),
    /// Say whether this host can live-migrate a VF with intel_vf_vfio_pci.
    ///
    /// One fact per line, each ok, info, warn or FAIL, and under each that
    /// is not ok, its fix: the module's vfio_pci: aliases in
    /// /lib/modules/$(uname -r)/modules.alias (what libvirt >= 10.0 binds a
    /// managed='yes' VF by), the IOMMU and interrupt remapping, device DMA
    /// logging (CONFIG_IOMMUFD_DRIVER) and iommufd, the QEMU and libvirt
    /// versions, every supported VF and its driver. Reads files and runs
    /// `--version` only: opens no device, loads no module. Exit code 0 when
    /// every fact is good, 11 when one fails, 12 when one has a caveat.
    /// Example: `vfmig doctor --json`
    #[command(after_help = Exit::help_text())]
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Read every file under DIR instead of / (a fake tree, for tests),
        /// and look for programs only in DIR's bin directories.
        #[arg(long, value_name = "DIR", hide = true)]
        root: Option<std::path::PathBuf>,
    },
}

/// What `list` and `info` report for one VF.
#[derive(Serialize)]
struct VfReport {
    bdf: String,
    pf: Option<String>,
    vendor: String,
    device: String,
    name: &'static str,
    family: &'static str,
    driver: Option<String>,
    iommu_group: Option<u32>,
    vfio_cdev: Option<String>,
    /// "none", "unbound", "unknown ..." or the VFIO migration flags.
    migration: Vec<String>,
    /// The dirty-tracking mode ("device" or "none"), where the driver says.
    dirty_tracking: Option<String>,
    /// Whether QEMU gets device dirty tracking (VFIO DMA logging) here.
    dma_logging: Option<bool>,
    /// The guest-visible capability, where the driver has one.
    guest_capability: Option<GuestCapReport>,
    /// Who holds the VF open now, if anybody.
    in_use_by: Option<String>,
}

/// The guest capability of a VF, from sysfs.
#[derive(Serialize)]
struct GuestCapReport {
    /// It is shown to the VF's user.
    shown: bool,
    /// The migration generation it shows (hex).
    generation: Option<String>,
    /// Where it sits in config space while the VF is open (hex).
    offset: Option<String>,
}

/// An error with its exit code.
pub(crate) struct Failure {
    code: Exit,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: Exit, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ivf_vfio::Error> for Failure {
    fn from(e: ivf_vfio::Error) -> Self {
        let code = match e.errno() {
            _ if e.is_busy() => Exit::Busy,
            Some(libc::ENODEV) | Some(libc::ENOENT) => Exit::NoDevice,
            Some(libc::EBUSY) => Exit::Busy,
            _ => Exit::Other,
        };
        Failure::new(code, e.to_string())
    }
}

/// The failure for `bdf` when opening it failed with `e`: if the kernel's
/// answer is the one it gives a second user ([`ivf_vfio::Error::is_busy`]:
/// EBUSY, or EINVAL from VFIO_DEVICE_BIND_IOMMUFD), busy, naming whoever
/// `holders` finds holding the VF now, or "another process" if it has let
/// go since (or is not visible in /proc); otherwise as `Failure::from`.
/// Two vfmig started at once both pass the holder check before either
/// opens: the loser learns of the winner only from the kernel's refusal.
pub(crate) fn open_failure(
    bdf: Bdf,
    e: ivf_vfio::Error,
    holders: impl FnOnce() -> Option<String>,
) -> Failure {
    if !e.is_busy() {
        return Failure::from(e);
    }
    busy_failure(bdf, holders(), &e)
}

/// [`Exit::Busy`]: `bdf` is held by `who`, or by "another process" when
/// nobody holds it any more; `refusal` is what the kernel said.
pub(crate) fn busy_failure(bdf: Bdf, who: Option<String>, refusal: &dyn fmt::Display) -> Failure {
    let who = who.unwrap_or_else(|| {
        "another process (it has closed the VF since, or /proc does not show it)".into()
    });
    Failure::new(
        Exit::Busy,
        format!("{bdf} is in use by {who}; the kernel refused the open: {refusal}"),
    )
}

/// One holder of a VF for a message: "pid 12 (qemu)". `comm` is what
/// `/proc/PID/comm` holds, which its process sets to any bytes it likes:
/// not UTF-8, it shows U+FFFD; its controls are escaped when printed
/// ([`term`]).
pub(crate) fn holder_text(pid: u32, comm: &[u8]) -> String {
    let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
    format!("pid {pid} ({})", String::from_utf8_lossy(comm))
}

/// Who holds `pci` open through vfio, for a message: "pid 12 (qemu),
/// ...", or `None` if nobody else does. The names are read again as bytes
/// (`PciDevice::vfio_holders` reads them as UTF-8 and has "" for any
/// other: a holder could hide its name so).
pub(crate) fn holders_text(pci: &PciDevice) -> Option<String> {
    // A holder whose name can no longer be read has exited between the
    // two reads: it holds nothing now, and is left out (no "pid N ()").
    let who: Vec<String> = pci
        .vfio_holders()
        .into_iter()
        .filter_map(|(pid, comm)| {
            let bytes = std::fs::read(format!("/proc/{pid}/comm"))
                .ok()
                .filter(|b| !b.is_empty())
                .or_else(|| (!comm.is_empty()).then(|| comm.into_bytes()))?;
            Some(holder_text(pid, &bytes))
        })
        .collect();
    (!who.is_empty()).then(|| who.join(", "))
}

/// The line `main` prints for a failure (escaped as it is printed).
fn error_line(f: &Failure) -> String {
    format!("vfmig: {}", f.message)
}

/// The failure for `bdf` found held by `who` before vfmig opened it.
pub(crate) fn in_use(bdf: Bdf, who: &str) -> Failure {
    Failure::new(Exit::Busy, format!("{bdf} is in use by {who}"))
}

/// The migration flags the driver offers, from its sysfs attribute: a
/// listing never opens a VF (a VFIO open resets it).
fn migration_of(dev: &PciDevice) -> Vec<String> {
    if dev.driver.as_deref() != Some(DRIVER) {
        return vec!["unbound".into()];
    }
    match sysfs::migration_flags(dev.bdf) {
        Ok(0) => vec!["none".into()],
        Ok(bits) => MigrationFlags(u64::from(bits))
            .names()
            .into_iter()
            .map(String::from)
            .collect(),
        Err(e) => vec![format!("unknown ({e})")],
    }
}

fn guest_cap_of(dev: &PciDevice) -> Option<GuestCapReport> {
    let shown = sysfs::guest_capability(dev.bdf).ok()?;
    Some(GuestCapReport {
        shown,
        generation: sysfs::guest_generation(dev.bdf)
            .ok()
            .map(|g| format!("{g:#010x}")),
        offset: sysfs::driver_attr(dev.bdf, "guest_capability_offset")
            .filter(|o| o.starts_with("0x")),
    })
}

fn report(dev: &PciDevice) -> Option<VfReport> {
    let vf = dev.supported_vf()?;
    let ours = dev.driver.as_deref() == Some(DRIVER);
    Some(VfReport {
        bdf: dev.bdf.to_string(),
        pf: dev.physfn.map(|b| b.to_string()),
        vendor: format!("{:04x}", dev.vendor),
        device: format!("{:04x}", dev.device),
        name: vf.name,
        family: vf.family.name(),
        driver: dev.driver.clone(),
        iommu_group: dev.iommu_group,
        vfio_cdev: dev.vfio_cdev.clone(),
        migration: migration_of(dev),
        dirty_tracking: ours
            .then(|| sysfs::driver_attr(dev.bdf, "dirty_tracking"))
            .flatten(),
        dma_logging: ours
            .then(|| sysfs::dirty_tracking(dev.bdf).ok())
            .flatten()
            .map(|m| m == DirtyTracking::Device),
        guest_capability: ours.then(|| guest_cap_of(dev)).flatten(),
        in_use_by: holders_text(dev),
    })
}

fn print_table(reports: &[VfReport]) {
    outln!(
        "{:<13} {:<13} {:<12} {:<6} {:<18} {:>5} {:<8} {:<6} {:<8} MIGRATION",
        "VF",
        "PF",
        "DEVICE",
        "FAMILY",
        "DRIVER",
        "GROUP",
        "CDEV",
        "DIRTY",
        "GUESTCAP"
    );
    for r in reports {
        outln!(
            "{:<13} {:<13} {:<12} {:<6} {:<18} {:>5} {:<8} {:<6} {:<8} {}",
            r.bdf,
            r.pf.as_deref().unwrap_or("-"),
            r.name,
            r.family,
            r.driver.as_deref().unwrap_or("-"),
            r.iommu_group
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            r.vfio_cdev.as_deref().unwrap_or("-"),
            r.dirty_tracking.as_deref().unwrap_or("-"),
            r.guest_capability
                .as_ref()
                .map_or("-", |c| if c.shown { "on" } else { "off" }),
            r.migration.join(",")
        );
    }
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Exit::Other, format!("JSON output: {e}")))?;
    term::json(&text);
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::List { json } => {
            let reports: Vec<VfReport> =
                sysfs::supported_vfs()?.iter().filter_map(report).collect();
            if json {
                print_json(&reports)?;
            } else if reports.is_empty() {
                let ids: Vec<String> = SUPPORTED_VFS
                    .iter()
                    .map(|v| format!("8086:{:04x}", v.device_id))
                    .collect();
                outln!("no supported VFs found (looked for {})", ids.join(", "));
            } else {
                print_table(&reports);
            }
        }
        Command::Info { bdf, json } => {
            let dev = PciDevice::open(bdf)?;
            let Some(r) = report(&dev) else {
                return Err(Failure::new(
                    Exit::Unsupported,
                    format!(
                        "{bdf} is {:04x}:{:04x}, not a VF that intel_vf_vfio_pci supports",
                        dev.vendor, dev.device
                    ),
                ));
            };
            if json {
                print_json(&r)?;
            } else {
                outln!("VF:          {}", r.bdf);
                outln!("PF:          {}", r.pf.as_deref().unwrap_or("-"));
                outln!("device:      {}:{} ({})", r.vendor, r.device, r.name);
                outln!("family:      {}", r.family);
                outln!("driver:      {}", r.driver.as_deref().unwrap_or("(none)"));
                outln!(
                    "iommu group: {}",
                    r.iommu_group
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                outln!(
                    "vfio cdev:   {}",
                    r.vfio_cdev
                        .as_deref()
                        .map(|c| format!("/dev/vfio/devices/{c}"))
                        .unwrap_or_else(|| "-".into())
                );
                outln!("migration:   {}", r.migration.join(", "));
                outln!(
                    "dirty:       {}",
                    match (r.dirty_tracking.as_deref(), r.dma_logging) {
                        (Some(m), Some(true)) => format!(
                            "{m} (the driver logs the VF's DMA: QEMU gets device dirty tracking)"
                        ),
                        (Some(m), _) => format!(
                            "{m} (no DMA logging offered: dirty pages come from the IOMMU or the VMM)"
                        ),
                        (None, _) => "-".into(),
                    }
                );
                outln!(
                    "guest cap:   {}",
                    match &r.guest_capability {
                        Some(c) if c.shown => format!(
                            "on, generation {}{}",
                            c.generation.as_deref().unwrap_or("?"),
                            c.offset
                                .as_deref()
                                .map(|o| format!(", at {o} in config space"))
                                .unwrap_or_default()
                        ),
                        Some(_) => "off".into(),
                        None => "-".into(),
                    }
                );
                outln!("in use by:   {}", r.in_use_by.as_deref().unwrap_or("-"));
            }
        }
        Command::Save { bdf, output } => stream_cmds::save(bdf, &output)?,
        Command::Load { bdf, input } => stream_cmds::load(bdf, &input)?,
        Command::Inspect { file, json } => stream_cmds::inspect(&file, json)?,
        Command::Check { file, bdf, json } => stream_cmds::check(&file, bdf, json)?,
        Command::Migrate(args) => migrate_cmd::migrate(args)?,
        Command::Doctor { json, root } => doctor::doctor(root, json)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout and succeed; the rest are
            // usage errors.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            }
            .into();
        }
    };
    match run(cli) {
        Ok(()) => Exit::Success.into(),
        Err(f) => {
            term::err(&error_line(&f));
            f.code.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn migrate_parses_its_options() {
        let cli = Cli::try_parse_from([
            "vfmig",
            "migrate",
            "0000:01:10.0",
            "0000:01:10.2",
            "--traffic",
            "eth0",
            "--rate",
            "250",
            "--before",
            "0.5",
            "--json",
            "--inject",
            "reset-source",
        ])
        .map_err(|e| e.to_string())
        .expect("parsed");
        assert!(matches!(cli.command, Command::Migrate(_)));
        let err = Cli::try_parse_from(["vfmig", "migrate", "0000:01:10.0"])
            .err()
            .expect("DST is required");
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
    }

    fn vf() -> Bdf {
        "0000:01:10.0".parse().unwrap()
    }

    fn os(what: &str, errno: i32) -> ivf_vfio::Error {
        ivf_vfio::Error::new(what, std::io::Error::from_raw_os_error(errno))
    }

    fn busy(what: &str, errno: i32) -> ivf_vfio::Error {
        ivf_vfio::Error::busy(what, std::io::Error::from_raw_os_error(errno))
    }

    const BIND: &str = "VFIO_DEVICE_BIND_IOMMUFD on /dev/vfio/devices/vfio0";

    /// The loser of two opens at once: EINVAL from the bind (the cdev
    /// path) or EBUSY (the group), with the winner found, or gone.
    #[test]
    fn a_lost_open_race_is_busy_naming_the_holder() {
        for errno in [libc::EINVAL, libc::EBUSY] {
            let f = open_failure(vf(), busy(BIND, errno), || Some("pid 4242 (vfmig)".into()));
            assert_eq!(f.code, Exit::Busy);
            assert!(
                f.message
                    .starts_with("0000:01:10.0 is in use by pid 4242 (vfmig);"),
                "{}",
                f.message
            );
            assert!(
                f.message.contains(BIND),
                "the kernel's answer: {}",
                f.message
            );
            let f = open_failure(vf(), busy(BIND, errno), || None);
            assert_eq!(f.code, Exit::Busy);
            assert!(
                f.message
                    .starts_with("0000:01:10.0 is in use by another process"),
                "{}",
                f.message
            );
        }
    }

    /// Errors that are not a second user keep their codes, and the holders
    /// are not even looked up.
    #[test]
    fn other_open_errors_keep_their_codes() {
        let cases = [
            (os(BIND, libc::EINVAL), Exit::Other),
            (os("IOMMU_IOAS_ALLOC", libc::EINVAL), Exit::Other),
            (os(BIND, libc::EPERM), Exit::Other),
            (os("PCI device 0000:01:10.0", libc::ENODEV), Exit::NoDevice),
            (
                os("opening /dev/vfio/devices/vfio0", libc::ENOENT),
                Exit::NoDevice,
            ),
            (os("VFIO_DEVICE_GET_INFO", libc::EBUSY), Exit::Busy),
        ];
        for (e, code) in cases {
            let text = e.to_string();
            let f = open_failure(vf(), e, || panic!("holders looked up for {text}"));
            assert_eq!(f.code, code, "{text}");
            assert_eq!(f.message, text);
        }
    }

    #[test]
    fn bad_bdf_is_a_usage_error() {
        let err = Cli::try_parse_from(["vfmig", "info", "01:99.0"])
            .err()
            .expect("rejected");
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
        assert!(err.to_string().contains("not a PCI address"), "{err}");
    }
}
