#!/usr/bin/env bash
# The one entry point: set-up, run, test, flash. `./run.sh --help` explains.
set -euo pipefail
# pipefail: a failing `cargo test | tee` fails the whole run.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

usage() {
    cat <<'USAGE'
Usage:
  ./run.sh [run] [OPTIONS] [-- QEMU-ARGS...]
      Build the kernel and its bootable image, create the scratch NVMe disk
      if there is none (stamped as owned), boot it in QEMU and run the application. Serial output
      is shown here; the exit status is the kernel's (0 success, 1 failure,
      2 panic, 3 CPU exception, 4 triple fault or reset, 5 timeout, 6 QEMU error).
  ./run.sh test          Every test: format and lint checks, host tests of the
                         host and driver crates, the drivers' logic under Miri,
                         then the kernel tests in QEMU.
  ./run.sh flash DEVICE [--yes] [--allow-non-removable]
                         Write the image (boots under BIOS and UEFI) to a USB stick:
                         refuses devices that are mounted, hold the running system,
                         or are not removable; asks before writing; verifies after.
  ./run.sh flash --to-file PATH
                         Write the same image to a file.
  ./run.sh soak [SECONDS] [OPTIONS]
                         Long run: random mixed 4 KiB reads and writes at depth 32 on
                         the scratch disk for SECONDS (default 600), every block's
                         content verified; prints I/Os, verification failures, errors.
  ./run.sh bench [--jobs LIST|all] [--seconds S] [--backend file|null] [OPTIONS]
                         The fio-like benchmark alone (optimised build unless --debug):
                         boots with steps=identify,bench on a FRESH 1 GiB owned disk
                         (disks/bench.img, re-created and stamped every run) and prints
                         the table; on serial BENCH-BEGIN/END/RESULT lines per job and
                         BENCH-FIRST-IO-MS. --jobs: comma list of randread-4k-qd1|8|32|128,
                         randwrite-4k-qd1|8|32|128, read-128k-qd8, write-128k-qd8, or all
                         (default: all); --seconds: timed window per job (default 2).
                         --backend null: QEMU's null-co driver (reads return zeroes, no
                         file): read jobs only, write jobs are reported as skipped.
  ./run.sh compare [--runs N] [--seconds S] [--jobs LIST|all|short] [--backend file|null]
                 [--results PATH]
                         The unikernel's benchmark against Debian's Linux + fio (io_uring
                         with hipri, and libaio) on the same emulated NVMe device: boots
                         alternate (default 3 rounds, 3 s per job, all ten jobs), each on
                         a fresh disk; prints medians, ranges, the ratio and QEMU's thread
                         load per job. --results docs/benchmark.md also writes the page,
                         its plots and the raw runs. The Linux guest is built once from
                         Debian packages (apt-get download, no install).
                         --host-halt-poll-ns NS (root): let the host's idle CPUs poll NS
                         before halting during the run (cpuidle haltpoll), restored after.
  ./run.sh cost [READS]  The driver's own instructions per 4 KiB read, submit to
                         completion, against the simulated controller, counted with
                         valgrind's callgrind (installed with apt-get when missing).
                         Also: ./run.sh bench --driver-cost.
  ./run.sh stamp PATH [--serial SERIAL]
                         Mark an existing raw disk image as owned by the unikernel
                         (the ownership signature, for controller SERIAL, default
                         UNIKERNEL0: the serial ./run.sh gives its first disk).
                         Only owned namespaces are ever written.
  ./run.sh image [--out PATH]
                         Build the bootable image only and print its path.
  ./run.sh fuzz [SECONDS] [TARGET...]
                         Fuzz the code that trusts device data (Identify and log
                         pages, completion entries, PCI configuration space) with
                         cargo-fuzz / libFuzzer, SECONDS per target (default 180),
                         every target unless some are named; prints executions per
                         target. Seeds in drivers/fuzz/seeds, the growing corpus in
                         the target directory, crash inputs in drivers/fuzz/artifacts.
                         Installs cargo-fuzz (crates.io) when missing.
  ./run.sh setup         Install what is missing (toolchain, QEMU, OVMF) and stop.
  ./run.sh --help        This text.

Options for run (and image/flash where they apply):
  --uefi                 Boot through UEFI firmware (OVMF) instead of BIOS.
  --disk PATH            Scratch NVMe disk image (default disks/scratch.img);
                         repeat for more disks, one NVMe controller each.
                         Created, sparse, when missing.
  --disk-size SIZE       Size of a disk that has to be created (default 1G;
                         K, M, G, T suffixes).
  --window               Show QEMU's window (the framebuffer console).
  --headless             No window, serial only (default).
  --machine TYPE         QEMU machine: pc (default) or q35.
  --memory SIZE          Guest memory (default 512M).
  --timeout SECS         Kill QEMU after this long (default 600).
  --release              Optimised build (default: debug build; bench: optimised).
  --debug                Debug build (for bench).
  --app NAME             Application binary of the kernel package (default: kernel).
  --settings FILE        Settings file handed to the application (see README:
                         steps, verify span, benchmark time, log level, claims).
  --qemu-arg ARG         One extra QEMU argument (repeatable); or put them after --.

Environment: CARGO_TARGET_DIR is honoured.
USAGE
}

die() { echo "run.sh: $*" >&2; exit 2; }
say() { echo "run.sh: $*" >&2; }

toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"

setup() {
    if ! command -v rustup >/dev/null 2>&1; then
        die "rustup is required (https://rustup.rs); install it and run again"
    fi
    if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1 \
        || ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src' \
        || ! rustup target list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^x86_64-unknown-none'; then
        say "installing Rust toolchain $toolchain with rust-src, llvm-tools, rustfmt, clippy and x86_64-unknown-none"
        rustup toolchain install >/dev/null
    fi
    if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^miri'; then
        say "installing the miri component of $toolchain"
        rustup component add miri --toolchain "$toolchain" >/dev/null
    fi
    local packages=()
    command -v qemu-system-x86_64 >/dev/null 2>&1 || packages+=(qemu-system-x86)
    [ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || packages+=(ovmf)
    if [ ${#packages[@]} -gt 0 ]; then
        say "installing ${packages[*]} with apt-get"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
    fi
}

target_dir="${CARGO_TARGET_DIR:-$here/target}"

build_host() {
    cargo build --quiet --package boot
}

build_kernel() { # profile app
    local profile_flag=()
    [ "$1" = release ] && profile_flag=(--release)
    cargo build --quiet --package kernel --target x86_64-unknown-none "${profile_flag[@]}" --bin "$2" \
        || die "building the kernel failed"
    kernel_elf="$target_dir/x86_64-unknown-none/$1/$2"
}

# Miri over the pure-logic parts (a few minutes): the unit tests of nvme (rings and
# phase tags, PRP lists, Identify and log parsing), pci, dma (volatile accesses,
# custody of lent memory) and ownership, and the property
# tests (the block API over the simulator, random configuration spaces; few cases under
# Miri). The simulator hands out host memory as DMA addresses and turns them back into
# pointers, hence permissive provenance; unit tests leak their DMA regions on purpose.
# Skipped: the ownership bit-flip sweep and the simulator scenario suites (minutes each
# when interpreted).
run_miri() {
    local flags="-Zmiri-permissive-provenance -Zmiri-ignore-leaks"
    MIRIFLAGS="$flags" cargo miri test --package nvme --package pci --lib --test props
    MIRIFLAGS="$flags" cargo miri test --package iommu
    MIRIFLAGS="$flags" cargo miri test --package dma
    MIRIFLAGS="$flags" cargo miri test --package ownership --lib -- \
        --skip no_single_bit_flip_goes_unnoticed
}

run_tests() {
    local started=$SECONDS log
    log="$(mktemp)"
    say "checking format"
    cargo fmt --all -- --check
    say "linting host crates and the kernel"
    cargo clippy --quiet --workspace --exclude kernel --all-targets -- -D warnings
    cargo clippy --quiet --package kernel --target x86_64-unknown-none --all-targets -- -D warnings
    say "host tests: boot, drivers"
    cargo test --workspace --exclude kernel 2>&1 | tee -a "$log"
    say "Miri: the drivers' logic and property tests, checked for undefined behaviour"
    run_miri 2>&1 | tee -a "$log"
    say "kernel tests in QEMU"
    cargo test --package kernel --target x86_64-unknown-none 2>&1 | tee -a "$log"
    # Every suite printed its own `test result:` line; add them up.
    local passed failed
    passed=$(sed -n 's/.*test result: [A-Za-z]*\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    failed=$(sed -n 's/.*test result: [A-Za-z]*\. [0-9]* passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    rm -f "$log"
    say "all tests passed in $((SECONDS - started)) s"
    echo "tests: ${passed:-0} passed, ${failed:-0} failed"
}

# Fuzz targets (drivers/fuzz/fuzz_targets) and the largest input each needs.
fuzz_targets=(identify log_pages bringup completions pci_function pci_topology)
declare -A fuzz_max_len=([identify]=4096 [log_pages]=1024 [bringup]=13312
    [completions]=2048 [pci_function]=280 [pci_topology]=4096)

run_fuzz() { # seconds [targets...]
    local seconds="$1" failed=0 t log execs
    shift
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${fuzz_targets[@]}")
    for t in "${targets[@]}"; do
        [ -n "${fuzz_max_len[$t]:-}" ] || die "unknown fuzz target $t (targets: ${fuzz_targets[*]})"
    done
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz from crates.io"
        cargo install --locked --quiet cargo-fuzz >/dev/null 2>&1 || die "installing cargo-fuzz failed"
    fi
    say "building the fuzz targets"
    (cd drivers/fuzz && cargo fuzz build --fuzz-dir . >/dev/null 2>&1) \
        || die "building the fuzz targets failed (cd drivers/fuzz && cargo fuzz build --fuzz-dir .)"
    for t in "${targets[@]}"; do
        local corpus="$target_dir/fuzz-corpus/$t"
        mkdir -p "$corpus"
        log="$(mktemp)"
        say "fuzzing $t for $seconds s"
        if ! (cd drivers/fuzz && cargo fuzz run --fuzz-dir . "$t" "$corpus" "seeds/$t" -- \
            -max_total_time="$seconds" -max_len="${fuzz_max_len[$t]}" -timeout=10 \
            -print_final_stats=1) >"$log" 2>&1; then
            failed=$((failed + 1))
            grep -E -A12 '^(==[0-9]+==ERROR|thread .* panicked)' "$log" | head -40 >&2 || tail -20 "$log" >&2
            say "$t: crash or timeout; the input is in drivers/fuzz/artifacts/$t"
        fi
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        printf '%-14s %12s executions in %s s\n' "$t" "${execs:-?}" "$seconds"
        rm -f "$log"
    done
    [ "$failed" -eq 0 ] || die "$failed fuzz target(s) failed"
}

# compare has options of its own: hand them all to the harness.
if [ "${1:-}" = compare ]; then
    shift
    setup
    cargo build --quiet --package boot --bin compare
    exec "$target_dir/debug/compare" "$@"
fi

command="run"
case "${1:-}" in
    run|test|flash|image|setup|stamp|soak|bench|cost|fuzz) command="$1"; shift ;;
    -h|--help|help) usage; exit 0 ;;
esac

profile=debug
[ "$command" = bench ] && profile=release
app=kernel
soak_seconds=600
fuzz_seconds=180
fuzz_only=()
bench_jobs=all
bench_seconds=2
backend=file
cost_reads=20000
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --release) profile=release ;;
        --debug) profile=debug ;;
        --jobs) [ $# -ge 2 ] || die "--jobs needs a list"; bench_jobs="$2"; shift ;;
        --seconds)
            [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--seconds needs a number"
            bench_seconds="$2"; shift ;;
        --backend)
            [ $# -ge 2 ] && { [ "$2" = file ] || [ "$2" = null ]; } || die "--backend needs file or null"
            backend="$2"; shift ;;
        --driver-cost) command=cost ;;
        --app) [ $# -ge 2 ] || die "--app needs a name"; app="$2"; shift ;;
        --uefi|--bios|--window|--headless|--yes|--allow-non-removable) pass+=("$1") ;;
        --disk|--disk-size|--machine|--memory|--timeout|--settings|--qemu-arg|--to-file|--out|--serial)
            [ $# -ge 2 ] || die "$1 needs a value"
            pass+=("$1" "$2"); shift ;;
        --) pass+=("$@"); break ;;
        -*) die "unknown option $1 (see ./run.sh --help)" ;;
        *)
            if [ "$command" = soak ] && [[ "$1" =~ ^[0-9]+$ ]]; then
                soak_seconds="$1"
            elif [ "$command" = cost ] && [[ "$1" =~ ^[0-9]+$ ]]; then
                cost_reads="$1"
            elif [ "$command" = fuzz ]; then
                if [[ "$1" =~ ^[0-9]+$ ]]; then fuzz_seconds="$1"; else fuzz_only+=("$1"); fi
            else
                [ "$command" = flash ] || [ "$command" = stamp ] || die "unexpected argument $1 (see ./run.sh --help)"
                pass+=("$1")
            fi ;;
    esac
    shift
done

# Instructions of driver_submit + driver_poll (inclusive) minus those of
# the simulated device behind the register calls, from callgrind_annotate.
driver_instructions() { # callgrind-output-file
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | awk '
        /=>/ { next }
        { gsub(",", "", $1) }
        /:cost::driver_(submit|poll) \[/ { d += $1 }
        /:<cost::Registers as nvme::hal::RegisterAccess>::(read|write)32 \[/ { d -= $1 }
        END { printf "%d\n", d }'
}

cost() {
    if ! command -v valgrind >/dev/null 2>&1; then
        say "installing valgrind with apt-get"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq valgrind >/dev/null
    fi
    cargo build --quiet --release --package nvme --example cost
    local dir small large
    dir="$(mktemp -d)"
    # Two runs, N and 2N reads: the difference leaves out bring-up exactly.
    valgrind --tool=callgrind --callgrind-out-file="$dir/n.out" \
        "$target_dir/release/examples/cost" "$cost_reads" 2>/dev/null
    valgrind --tool=callgrind --callgrind-out-file="$dir/2n.out" \
        "$target_dir/release/examples/cost" "$((cost_reads * 2))" >/dev/null 2>&1
    small="$(driver_instructions "$dir/n.out")"
    large="$(driver_instructions "$dir/2n.out")"
    rm -rf "$dir"
    awk -v a="$small" -v b="$large" -v n="$cost_reads" 'BEGIN {
        printf "driver instructions per 4 KiB read (submit to completion, depth 1): %.0f\n", (b - a) / n }'
}

bench() {
    build_host
    build_kernel "$profile" "$app"
    local settings ms jobs_count target=()
    settings="$(mktemp)"
    ms="$(awk -v s="$bench_seconds" 'BEGIN { printf "%d", s * 1000 }')"
    printf 'steps = identify,bench\nbench_ms = %s\nbench_jobs = %s\n' "$ms" "$bench_jobs" > "$settings"
    if [ "$backend" = null ]; then
        printf 'bench_unowned_reads = yes\n' >> "$settings"
        target=(--backend null)
    else
        mkdir -p disks
        target=(--disk disks/bench.img --fresh-disk --disk-size 1G)
    fi
    jobs_count=$(( $(tr -cd ',' <<<"$bench_jobs" | wc -c) + 1 ))
    [ "$bench_jobs" = all ] && jobs_count=10
    exec "$target_dir/debug/boot" run --kernel "$kernel_elf" --settings "$settings" \
        --timeout "$(( jobs_count * (ms / 1000 + 2) + 120 ))" "${target[@]}" \
        --qemu-arg -name --qemu-arg unikernel-bench,debug-threads=on "${pass[@]}"
}

setup
case "$command" in
    setup) say "set-up complete" ;;
    test) run_tests ;;
    fuzz) run_fuzz "$fuzz_seconds" "${fuzz_only[@]}" ;;
    run)
        build_host
        build_kernel "$profile" "$app"
        exec "$target_dir/debug/boot" run --kernel "$kernel_elf" "${pass[@]}" ;;
    soak)
        build_host
        build_kernel "$profile" "$app"
        settings="$(mktemp)"
        printf 'steps = identify,soak\nsoak_ms = %s\nsoak_span = 256M\n' "$((soak_seconds * 1000))" > "$settings"
        exec "$target_dir/debug/boot" run --kernel "$kernel_elf" --settings "$settings" \
            --timeout "$((soak_seconds + 300))" "${pass[@]}" ;;
    bench)
        for arg in "${pass[@]}"; do
            [ "$arg" = --disk ] && die "bench always uses its own fresh disk (disks/bench.img); --disk is not accepted"
        done
        bench ;;
    cost) cost ;;
    stamp)
        build_host
        exec "$target_dir/debug/boot" stamp "${pass[@]}" ;;
    image)
        build_host
        build_kernel "$profile" "$app"
        exec "$target_dir/debug/boot" image --kernel "$kernel_elf" --out "$target_dir/unikernel-$app.img" "${pass[@]}" ;;
    flash)
        build_host
        build_kernel release "$app"
        exec "$target_dir/debug/boot" flash --kernel "$kernel_elf" "${pass[@]}" ;;
esac
