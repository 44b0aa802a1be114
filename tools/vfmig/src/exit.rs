// SPDX-License-Identifier: GPL-2.0

//! vfmig's exit codes: one table gives each its value, its name, the
//! [`ivf_migrate::ErrorKind`] it reports (if any) and its line of `--help`
//! (Documentation/vfmig.rst and README.md list the same codes, which tests
//! check). The codes are stable: never renumber one.

use std::process::ExitCode;

use ivf_migrate::ErrorKind;

/// Defines [`Exit`] from rows of `Name = value [for ErrorKind::Kind], "help";`.
/// The rows that name a kind make `From<ErrorKind>`, whose match is
/// exhaustive: a new kind does not compile until a row reports it.
macro_rules! exit_codes {
    ($(
        $(#[$doc:meta])*
        $name:ident = $value:literal $(for ErrorKind::$kind:ident)?, $help:literal;
    )+) => {
        /// An exit code of vfmig.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Exit {
            $($(#[$doc])* $name = $value,)+
        }

        impl Exit {
            /// Every exit code, in the table's order.
            pub(crate) const ALL: &'static [Exit] = &[$(Exit::$name),+];

            /// The line of `--help` that explains this code.
            pub(crate) const fn help(self) -> &'static str {
                match self {
                    $(Exit::$name => $help,)+
                }
            }
        }

        impl From<ErrorKind> for Exit {
            /// The exit code of a failed migration.
            fn from(kind: ErrorKind) -> Exit {
                match kind {
                    $($(ErrorKind::$kind => Exit::$name,)?)+
                }
            }
        }

        /// Each engine error kind with the code the table gives it.
        #[cfg(test)]
        const KINDS: &[(ErrorKind, Exit)] = &[$($((ErrorKind::$kind, Exit::$name),)?)+];
    };
}

exit_codes! {
    /// Success.
    Success = 0, "success";
    /// Any other error.
    Other = 1 for ErrorKind::Other, "other error (the message says which)";
    /// A usage error (clap's, or arguments that contradict each other).
    Usage = 2 for ErrorKind::Usage, "usage error";
    /// No such PCI device.
    NoDevice = 3 for ErrorKind::NoDevice, "no such PCI device";
    /// Not a supported VF, or not bound to intel_vf_vfio_pci.
    Unsupported = 4 for ErrorKind::Unsupported,
        "not a supported VF, or not bound to intel_vf_vfio_pci";
    /// The device is held by another user.
    Busy = 5 for ErrorKind::Busy,
        "device busy (opened by another user, e.g. QEMU)";
    /// The stream is invalid, or the device refused it.
    Refused = 6 for ErrorKind::Refused,
        "stream invalid, or refused by the device (the message names the field)";
    /// `migrate`: the source failed mid-migration.
    Source = 7 for ErrorKind::Source,
        "migrate: the source failed mid-migration (e.g. it was reset); guest back on SRC";
    /// `migrate`: the destination failed after accepting the stream.
    Destination = 8 for ErrorKind::Destination,
        "migrate: the destination failed after accepting the stream; guest back on SRC";
    /// `migrate`: verification failed.
    Verify = 9 for ErrorKind::Verify,
        "migrate: verification failed (memory copy, or payloads corrupt or twice)";
    /// `migrate`: the source could not be brought back to running.
    Rollback = 10 for ErrorKind::Rollback,
        "migrate: the source could not be brought back to running";
    /// `doctor`: a fact stops live migration on this host.
    DoctorFail = 11,
        "doctor: a fact fails (its FAIL line names the fix)";
    /// `doctor`: migration works, with a caveat.
    DoctorWarn = 12,
        "doctor: none fails, but a fact has a caveat (its warn line names it)";
}

impl Exit {
    /// The numeric exit code.
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }

    /// The "Exit codes:" section of `--help`.
    pub(crate) fn help_text() -> String {
        let mut text = String::from("Exit codes:");
        for e in Exit::ALL {
            text.push_str(&format!("\n{:>3}  {}", e.code(), e.help()));
        }
        text
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_distinct_and_keep_their_values() {
        assert_eq!(codes(), (0..=12).collect::<Vec<u8>>(), "stable values");
        assert_eq!(Exit::Busy.code(), 5);
        assert_eq!(Exit::Refused.code(), 6);
    }

    #[test]
    fn help_lists_every_code() {
        let text = Exit::help_text();
        assert!(text.starts_with("Exit codes:\n  0  success\n  1  other error"));
        assert!(text.contains("\n 10  migrate: the source could not be brought back to running\n"));
        assert!(text.ends_with(
            "\n 12  doctor: none fails, but a fact has a caveat (its warn line names it)"
        ));
        assert_eq!(text.lines().count(), Exit::ALL.len() + 1);
    }

    /// Each engine kind has its own code, of its own name, never success
    /// (that every kind has one, the exhaustive match guarantees).
    #[test]
    fn migrate_kinds_agree_with_the_engine() {
        let mut seen = BTreeSet::new();
        for &(kind, exit) in KINDS {
            assert_eq!(Exit::from(kind), exit, "{kind:?}");
            assert_eq!(format!("{exit:?}"), format!("{kind:?}"));
            assert_ne!(exit, Exit::Success, "{kind:?}");
            assert!(
                seen.insert(exit.code()),
                "{kind:?}: code {} twice",
                exit.code()
            );
        }
    }

    fn codes() -> Vec<u8> {
        Exit::ALL.iter().map(|e| e.code()).collect()
    }

    fn read_doc(relative: &str) -> String {
        let path = format!("{}/../../{relative}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The table of Documentation/vfmig.rst lists the same codes, in order.
    #[test]
    fn documentation_lists_the_same_codes() {
        let doc = read_doc("Documentation/vfmig.rst");
        let table = doc
            .split("\nExit codes\n==========\n")
            .nth(1)
            .expect("an 'Exit codes' section");
        let documented: Vec<u8> = table
            .lines()
            .filter_map(|l| {
                let (code, rest) = l.split_once("  ")?;
                rest.trim_start().chars().next()?;
                code.trim_end().parse().ok()
            })
            .collect();
        assert_eq!(documented, codes());
    }

    /// The "Exit codes:" paragraph of README.md names the same codes, in
    /// order.
    #[test]
    fn readme_lists_the_same_codes() {
        let readme = read_doc("README.md");
        let paragraph = readme
            .split("\nExit codes: ")
            .nth(1)
            .and_then(|p| p.split("\n\n").next())
            .expect("an 'Exit codes:' paragraph");
        let documented: Vec<u8> = paragraph
            .split_whitespace()
            .filter_map(|w| {
                w.trim_matches(|c: char| c.is_ascii_punctuation())
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(documented, codes());
    }
}
