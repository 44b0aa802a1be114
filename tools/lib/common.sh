# What the scripts that build and cache a product share (sourced, not run;
# it sources env.sh beside it). A cached product is a directory under
# $IVF_CACHE named by a key; it is complete when it holds .ivf-complete,
# and one builder at a time makes it, under a lock beside it:
#
#   key=$(ivf_key -x "$0" -s "$version" "$here/some.config")
#   dir=$IVF_CACHE/thing-$key
#   [ "${1:-}" = --print-dir ] && { echo "$dir"; exit 0; }
#   ivf_claim "$dir"     # prints DIR and exits 0 when it is complete;
#                        # else returns holding DIR's lock
#   ... build into $dir ...
#   ivf_mark "$dir"
#
# say and die prefix their message with the script's name (the last two
# parts of its path: kernel/build); IVF_SELF overrides it, ivf_quiet=1
# silences say (not die).

# shellcheck source=tools/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
IVF_ROOT=${IVF_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
IVF_SELF=${IVF_SELF:-$(basename "$(dirname "$0")")/$(basename "$0")}
ivf_quiet=${ivf_quiet:-0}

say() { [ "$ivf_quiet" = 1 ] || echo "$IVF_SELF: $*" >&2; }
die() {
	echo "$IVF_SELF: $*" >&2
	exit 1
}

# ivf_key INPUT...: the cache key (12 hex digits) of a product built from
# these inputs, each one of
#   PATH        a file's bytes, or a directory's files (their names below
#               it and their bytes; in the clone, the files git tracks or
#               would track, so build products and ignored files do not
#               count); named by their path in the clone, or as given
#   -x SCRIPT   a script that builds the product: its code, without its
#               comment lines and blank lines (a comment does not rebuild)
#   -s STRING   a named string: a version, a flag, a package list
# A missing PATH is an error: a key must not quietly drop an input.
ivf_key() {
	local a name f
	{
		while [ $# -gt 0 ]; do
			case "$1" in
			-s)
				printf 'string %s\n' "${2?ivf_key: -s needs a string}"
				shift 2
				continue
				;;
			-x)
				[ -f "${2:-}" ] || die "ivf_key: no script '${2:-}'"
				a=$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")
				printf 'script %s\n' "${a#"$IVF_ROOT"/}"
				sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$2"
				shift 2
				continue
				;;
			esac
			if [ -d "$1" ]; then
				a=$(cd "$1" && pwd -P)
			elif [ -f "$1" ]; then
				a=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
			else
				die "ivf_key: no file or directory '$1'"
			fi
			name=${a#"$IVF_ROOT"/}
			if [ -f "$a" ]; then
				printf 'file %s %s\n' "$name" "$(sha256sum <"$a" | cut -d' ' -f1)"
			elif { [ "$name" != "$a" ] || [ "$a" = "$IVF_ROOT" ]; } &&
				git -C "$IVF_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
				printf 'dir %s\n' "$name"
				git -C "$IVF_ROOT" ls-files -z --cached --others --exclude-standard -- "$a" |
					LC_ALL=C sort -zu | while IFS= read -r -d '' f; do
						[ -f "$IVF_ROOT/$f" ] || continue
						printf '%s %s\n' "$(sha256sum <"$IVF_ROOT/$f" | cut -d' ' -f1)" "$f"
					done
			else
				printf 'dir %s\n' "$name"
				(cd "$a" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
			fi
			shift
		done
	} | sha256sum | cut -c1-12
}

# ivf_lock PATH: hold PATH.lock (flock) until the script exits; says so
# when another holder makes it wait.
ivf_lock() {
	local fd
	mkdir -p "$(dirname "$1")"
	exec {fd}>"$1.lock"
	if ! flock -n "$fd"; then
		say "waiting for another builder of ${1#"$IVF_CACHE"/} (lock $1.lock)"
		flock "$fd"
	fi
}

# ivf_complete DIR: whether DIR is a complete product. ivf_mark DIR: it is.
ivf_complete() { [ -f "$1/.ivf-complete" ]; }
ivf_mark() { touch "$1/.ivf-complete"; }

# ivf_reuse DIR: when DIR is complete, print it and end the script (0).
ivf_reuse() {
	ivf_complete "$1" || return 0
	say "cached $1"
	echo "$1"
	exit 0
}

# ivf_claim DIR: ivf_reuse DIR, else take DIR's lock and look again (the
# builder that held it may have finished it); returns holding the lock.
ivf_claim() {
	ivf_reuse "$1"
	ivf_lock "$1"
	ivf_reuse "$1"
}

# ivf_unpack TARBALL DIR: DIR holds TARBALL's tree (its top directory
# stripped), unpacked once under DIR's lock (marker .ivf-extracted).
ivf_unpack() {
	local tarball=$1 dir=$2
	[ -f "$dir/.ivf-extracted" ] && return 0
	ivf_lock "$dir"
	[ -f "$dir/.ivf-extracted" ] && return 0
	say "extracting $tarball into $dir"
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp"
	tar -C "$dir.tmp" --strip-components=1 -xf "$tarball"
	touch "$dir.tmp/.ivf-extracted"
	mv "$dir.tmp" "$dir"
}

# ivf_linux_source_version: the version of Debian's linux-source-$IVF_KERNEL_SERIES.
ivf_linux_source_version() {
	dpkg-query -W -f='${Version}' "linux-source-$IVF_KERNEL_SERIES" 2>/dev/null ||
		die "linux-source-$IVF_KERNEL_SERIES is not installed; run tools/setup first"
}

# ivf_linux_source VERSION: the directory of that linux-source, extracted
# once (shared by every kernel build: the test kernels, the nested guest's).
ivf_linux_source() {
	local dir=$IVF_CACHE/src/linux-source-$1
	ivf_unpack "/usr/src/linux-source-$IVF_KERNEL_SERIES.tar.xz" "$dir"
	echo "$dir"
}

# ivf_since START: seconds since START (date +%s).
ivf_since() { echo $(($(date +%s) - $1)); }
