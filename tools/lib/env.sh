# Shared settings for the project's scripts (sourced, not run).
IVF_KERNEL_SERIES=${IVF_KERNEL_SERIES:-7.3}
IVF_LLVM_VERSION=${IVF_LLVM_VERSION:-19}
# The oldest rustc the module's Rust builds with: Debian 13's, the compiler
# of Debian's own 7.3 kernel.
IVF_MSRV=${IVF_MSRV:-1.85.1}
# The rustup toolchain of the project's own test kernels (and so of the module).
IVF_KERNEL_RUST=${IVF_KERNEL_RUST:-$IVF_MSRV}
IVF_CACHE=${IVF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/intel-vf-vfio}
# virtme-ng lives in a venv the project owns (PEP 668: no pip outside one).
IVF_VENV=${IVF_VENV:-$IVF_CACHE/venv}
# bindgen (kernel and module) finds Debian's libclang here.
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export PATH="$HOME/.cargo/bin:$IVF_VENV/bin:$PATH"
export CARGO_INCREMENTAL=0
