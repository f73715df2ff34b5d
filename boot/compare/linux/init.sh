#!/bin/busybox sh
# /init of the Linux comparison guest (see boot/compare/src/linux.rs).
#
# Loads the NVMe driver with one poll queue, then runs the benchmark jobs
# named on the kernel command line with fio on /dev/nvme0n1 and powers off.
# Everything the host parses starts a line:
#   GUEST-INFO <key> <value>       facts about the guest
#   BENCH-BEGIN <job>              the job's timed window starts (ramp over)
#   BENCH-END <job>                the timed window ended
#   GUEST-IRQS <job> <count>       NVMe interrupts taken during the job
#   FIO-JSON-BEGIN <job> <engine>  fio's JSON report follows, up to
#   FIO-JSON-END <job>
#   GUEST-DONE                     every job ran
# Command-line parameters read here (the kernel hands them on untouched):
#   fio_jobs=a,b,c  fio_engine=io_uring|libaio  fio_seconds=N  fio_ramp=N

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

param() {
    for word in $(cat /proc/cmdline); do
        case "$word" in
            "$1"=*) echo "${word#*=}"; return ;;
        esac
    done
    echo "$2"
}

jobs="$(param fio_jobs randread-4k-qd1)"
engine="$(param fio_engine io_uring)"
seconds="$(param fio_seconds 3)"
ramp="$(param fio_ramp 1)"

# Modules in dependency order, one per line: file and parameters.
while read -r module args; do
    insmod "/lib/modules/$module" $args || echo "GUEST-ERROR insmod $module failed"
done < /etc/modules-load

tries=0
while [ ! -b /dev/nvme0n1 ] && [ $tries -lt 200 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
if [ ! -b /dev/nvme0n1 ]; then
    echo "GUEST-ERROR no /dev/nvme0n1"
    poweroff -f
fi

echo "GUEST-INFO kernel $(uname -r)"
echo "GUEST-INFO fio $(fio --version)"
echo "GUEST-INFO engine $engine"
echo "GUEST-INFO io_poll $(cat /sys/block/nvme0n1/queue/io_poll)"
echo "GUEST-INFO poll_queues $(cat /sys/module/nvme/parameters/poll_queues)"
echo "GUEST-INFO nr_requests $(cat /sys/block/nvme0n1/queue/nr_requests)"
echo "GUEST-INFO scheduler $(cat /sys/block/nvme0n1/queue/scheduler)"

nvme_irqs() {
    awk '/nvme/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break } END { print s + 0 }' /proc/interrupts
}

# The BEGIN marker is printed by fio itself (exec_prerun) when the job has
# set up, after the ramp; the END marker when the timed part is over.
cat > /bin/bench-mark <<'MARK'
#!/bin/sh
# bench-mark BEGIN|END JOB [DELAY]
if [ -n "$3" ]; then
    (sleep "$3"; echo "BENCH-$1 $2" > /dev/console) &
else
    echo "BENCH-$1 $2" > /dev/console
fi
MARK
chmod +x /bin/bench-mark

for job in $(echo "$jobs" | tr ',' ' '); do
    rw="${job%%-*}"
    rest="${job#*-}"
    bs="${rest%%-*}"
    depth="${rest#*-qd}"
    extra=""
    [ "$engine" = io_uring ] && extra="--hipri=1"
    before="$(nvme_irqs)"
    fio --name="$job" --filename=/dev/nvme0n1 --rw="$rw" --bs="$bs" \
        --iodepth="$depth" --ioengine="$engine" $extra --direct=1 \
        --time_based=1 --ramp_time="$ramp" --runtime="$seconds" \
        --norandommap=1 --randrepeat=0 --lat_percentiles=1 \
        --percentile_list=50:99:99.9 \
        --exec_prerun="/bin/bench-mark BEGIN $job $ramp" \
        --exec_postrun="/bin/bench-mark END $job" \
        --output-format=json --output="/tmp/$job.json" > /tmp/fio.log 2>&1 \
        || { echo "GUEST-ERROR fio $job failed"; cat /tmp/fio.log; }
    echo "GUEST-IRQS $job $(( $(nvme_irqs) - before ))"
    echo "FIO-JSON-BEGIN $job $engine"
    cat "/tmp/$job.json"
    echo "FIO-JSON-END $job"
done
echo "GUEST-DONE"
sync
poweroff -f
