// SPDX-License-Identifier: GPL-2.0

//! `vfmig`: list Intel SR-IOV VFs, show what the intel_vf_vfio_pci driver
//! offers for them, and (as the driver grows) save, load, inspect and
//! migrate their state.
//!
//! Exit codes (stable, documented in `--help` and Documentation/vfmig.rst):
//! 0 success; 1 other error; 2 usage error; 3 no such PCI device;
//! 4 device is not a supported VF or not bound to intel_vf_vfio_pci;
//! 5 device busy (opened by another user); 6 stream invalid or refused;
//! `migrate` also: 7 the source failed mid-migration; 8 the destination
//! failed after accepting the stream; 9 verification failed; 10 the source
//! could not be brought back (7, 8 and 6 leave the guest running on SRC).

mod migrate_cmd;
mod stream_cmds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use ivf_common::ids::SUPPORTED_VFS;
use ivf_vfio::sysfs::{self, Bdf, PciDevice};
use ivf_vfio::{Device, MigrationFlags};

/// The driver `vfmig` works with.
pub(crate) const DRIVER: &str = "intel_vf_vfio_pci";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other error (the message says which)
  2  usage error
  3  no such PCI device
  4  not a supported VF, or not bound to intel_vf_vfio_pci
  5  device busy (opened by another user, e.g. QEMU)
  6  stream invalid, or refused by the device (the message names the field)
  7  migrate: the source failed mid-migration (e.g. it was reset); guest back on SRC
  8  migrate: the destination failed after accepting the stream; guest back on SRC
  9  migrate: verification failed (memory copy, or payloads corrupt or twice)
 10  migrate: the source could not be brought back to running";

#[derive(Parser)]
#[command(name = "vfmig", version, about = "Live migration of Intel SR-IOV VFs bound to intel_vf_vfio_pci", after_help = EXIT_CODES)]
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
    #[command(after_help = EXIT_CODES)]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one VF in detail. Example: `vfmig info 0000:01:10.0`
    #[command(after_help = EXIT_CODES)]
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
    /// data to FILE (atomically: a temporary file renamed). The VF must not
    /// be in use. When vfmig exits it closes the VF, which resets it, as any
    /// VFIO close does. Example: `vfmig save 0000:01:10.0 -o vf0.state`
    #[command(after_help = EXIT_CODES)]
    Save {
        /// PCI address of the VF.
        bdf: Bdf,
        /// Where to write the state.
        #[arg(short, long, value_name = "FILE")]
        output: std::path::PathBuf,
    },
    /// Load a saved state into a VF (RESUMING, then STOP, then RUNNING).
    ///
    /// The driver checks the whole stream before touching the device: a
    /// corrupt, truncated, foreign or future-version file is refused with
    /// exit code 6 and the reason. The VF is closed (and so reset) when vfmig
    /// exits: use this to prove a destination accepts a stream; a VMM keeps
    /// the device open. Example: `vfmig load 0000:01:10.2 -i vf0.state`
    #[command(after_help = EXIT_CODES)]
    Load {
        /// PCI address of the VF.
        bdf: Bdf,
        /// The saved state.
        #[arg(short, long, value_name = "FILE")]
        input: std::path::PathBuf,
    },
    /// Decode a saved state: header, frames and sections, in words.
    /// Example: `vfmig inspect vf0.state --json`
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// The saved state.
        file: std::path::PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Say, without opening the device, whether a VF could load a saved
    /// state, and why not. Example: `vfmig check vf0.state 0000:01:10.2`
    #[command(after_help = EXIT_CODES)]
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
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Migrate(migrate_cmd::MigrateArgs),
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
    /// "none", "busy", "unbound", "error: ..." or the VFIO migration flags.
    migration: Vec<String>,
}

/// An error with its exit code.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ivf_vfio::Error> for Failure {
    fn from(e: ivf_vfio::Error) -> Self {
        let code = match e.errno() {
            Some(libc::ENODEV) | Some(libc::ENOENT) => 3,
            Some(libc::EBUSY) => 5,
            _ => 1,
        };
        Failure::new(code, e.to_string())
    }
}

fn migration_of(dev: &PciDevice) -> Vec<String> {
    if dev.driver.as_deref() != Some(DRIVER) {
        return vec!["unbound".into()];
    }
    if !dev.vfio_holders().is_empty() {
        return vec!["busy".into()];
    }
    match Device::open_cdev(dev.bdf) {
        Ok(vfio) => match vfio.migration_flags() {
            Ok(Some(MigrationFlags(0))) | Ok(None) => vec!["none".into()],
            Ok(Some(flags)) => flags.names().into_iter().map(String::from).collect(),
            Err(e) => vec![format!("error: {e}")],
        },
        Err(e) if e.errno() == Some(libc::EBUSY) => vec!["busy".into()],
        Err(e) => vec![format!("error: {e}")],
    }
}

fn report(dev: &PciDevice) -> Option<VfReport> {
    let vf = dev.supported_vf()?;
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
    })
}

fn print_table(reports: &[VfReport]) {
    println!(
        "{:<13} {:<13} {:<12} {:<6} {:<18} {:>5} {:<8} MIGRATION",
        "VF", "PF", "DEVICE", "FAMILY", "DRIVER", "GROUP", "CDEV"
    );
    for r in reports {
        println!(
            "{:<13} {:<13} {:<12} {:<6} {:<18} {:>5} {:<8} {}",
            r.bdf,
            r.pf.as_deref().unwrap_or("-"),
            r.name,
            r.family,
            r.driver.as_deref().unwrap_or("-"),
            r.iommu_group
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            r.vfio_cdev.as_deref().unwrap_or("-"),
            r.migration.join(",")
        );
    }
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(1, format!("JSON output: {e}")))?;
    println!("{text}");
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
                println!("no supported VFs found (looked for {})", ids.join(", "));
            } else {
                print_table(&reports);
            }
        }
        Command::Info { bdf, json } => {
            let dev = PciDevice::open(bdf)?;
            let Some(r) = report(&dev) else {
                return Err(Failure::new(
                    4,
                    format!(
                        "{bdf} is {:04x}:{:04x}, not a VF that intel_vf_vfio_pci supports",
                        dev.vendor, dev.device
                    ),
                ));
            };
            if json {
                print_json(&r)?;
            } else {
                println!("VF:          {}", r.bdf);
                println!("PF:          {}", r.pf.as_deref().unwrap_or("-"));
                println!("device:      {}:{} ({})", r.vendor, r.device, r.name);
                println!("family:      {}", r.family);
                println!("driver:      {}", r.driver.as_deref().unwrap_or("(none)"));
                println!(
                    "iommu group: {}",
                    r.iommu_group
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                println!(
                    "vfio cdev:   {}",
                    r.vfio_cdev
                        .as_deref()
                        .map(|c| format!("/dev/vfio/devices/{c}"))
                        .unwrap_or_else(|| "-".into())
                );
                println!("migration:   {}", r.migration.join(", "));
            }
        }
        Command::Save { bdf, output } => stream_cmds::save(bdf, &output)?,
        Command::Load { bdf, input } => stream_cmds::load(bdf, &input)?,
        Command::Inspect { file, json } => stream_cmds::inspect(&file, json)?,
        Command::Check { file, bdf, json } => stream_cmds::check(&file, bdf, json)?,
        Command::Migrate(args) => migrate_cmd::migrate(args)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("vfmig: {}", f.message);
            ExitCode::from(f.code)
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
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn bad_bdf_is_a_usage_error() {
        let err = Cli::try_parse_from(["vfmig", "info", "01:99.0"])
            .err()
            .expect("rejected");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not a PCI address"), "{err}");
    }
}
