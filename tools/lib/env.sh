# Shared settings for the project's scripts (sourced, not run).
IVF_KERNEL_SERIES=${IVF_KERNEL_SERIES:-7.3}
IVF_LLVM_VERSION=${IVF_LLVM_VERSION:-19}
IVF_CACHE=${IVF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/intel-vf-vfio}
# bindgen (kernel and module) finds Debian's libclang here.
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_INCREMENTAL=0
