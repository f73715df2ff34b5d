#!/usr/bin/env bash
# The one entry point. Installs what is missing (the pinned Rust toolchain
# with Miri, QEMU, OVMF), builds the command-line program (boot/cli) and
# hands it every argument: `./run.sh --help` is that program's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

die() { echo "run.sh: $*" >&2; exit 2; }
say() { echo "run.sh: $*" >&2; }

toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"

installed() { # component-or-target-list-command pattern
    rustup "$1" list --toolchain "$toolchain" --installed 2>/dev/null | grep -q "^$2"
}

if ! command -v rustup >/dev/null 2>&1; then
    die "rustup is required (https://rustup.rs); install it and run again"
fi
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1 \
    || ! installed component rust-src || ! installed target x86_64-unknown-none; then
    say "installing Rust toolchain $toolchain with rust-src, llvm-tools, rustfmt, clippy and x86_64-unknown-none"
    rustup toolchain install >/dev/null
fi
if ! installed component miri; then
    say "installing the miri component of $toolchain"
    rustup component add miri --toolchain "$toolchain" >/dev/null
fi
packages=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || packages+=(qemu-system-x86)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || packages+=(ovmf)
if [ ${#packages[@]} -gt 0 ]; then
    say "installing ${packages[*]} with apt-get"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi

cargo build --quiet --package cli --bin unikernel || die "building the command-line program failed"
exec "${CARGO_TARGET_DIR:-$here/target}/debug/unikernel" "$@"
