#!/bin/sh
# /init of the `p2pview verify` initramfs (busybox sh). Prints its results on
# the serial console between "=====P2PVIEW BEGIN name" / "=====P2PVIEW END name"
# lines, then powers the machine off. Environment from the kernel command line:
#   p2pview_nvme=N   how many NVMe namespaces to wait for
#   p2pview_acs=BDF=CTRL,...   ACS Control values to write through sysfs first
#                    (releases without pci=config_acs=, i.e. before v6.11)
#   p2pview_io=1     `p2pview verify --io`: after the capture, print each
#                    namespace's queue limits and run the O_DIRECT scenarios of
#                    /etc/p2pview-io (one a line: NAME CLIENT_BDF OP OFFSET SEGS
#                    IOVS SENTINEL_BEFORE SENTINEL_AFTER; see p2pvhelp.c io), each
#                    followed by what the kernel logged meanwhile; then power off
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /cap
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# Keep the console for our markers: kernel messages stay in dmesg.
echo 1 > /proc/sys/kernel/printk

begin() { echo "=====P2PVIEW BEGIN $1"; }
end() { echo "=====P2PVIEW END $1"; }

# Wait for the NVMe driver's asynchronous probes to publish every namespace.
want=${p2pview_nvme:-0}
i=0
while [ "$(ls /sys/block 2>/dev/null | grep -c '^nvme')" -lt "$want" ] && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done

T=/sys/kernel/tracing
# A kretprobe on the function that decides a pair: calc_map_type_and_dist()
# from v5.15 on; upstream_bridge_distance() in v5.9-v5.14 (5.10.223), where the
# result already includes the whitelist check. Each evaluation leaves one event
# with enum pci_p2pdma_map_type (values differ by release; the host knows them).
probe=off
for fn in calc_map_type_and_dist upstream_bridge_distance; do
    grep -q " $fn\$" /proc/kallsyms 2>/dev/null || continue
    if echo "r:p2pcalc $fn map=\$retval" > $T/kprobe_events 2>/dev/null \
        && echo 1 > $T/events/kprobes/p2pcalc/enable; then
        probe=$fn
        break
    fi
done
trace_maps() { sed -n 's/.*map=\(0x[0-9a-f]*\).*/\1/p' $T/trace | tr '\n' ' '; }

# ACS Control the kernel command line could not set, before anything evaluates a
# pair (the kernel caches a pair's map type at its first evaluation).
begin acs
for entry in $(echo "${p2pview_acs:-}" | tr ',' ' '); do
    /bin/p2pvhelp acs "/sys/bus/pci/devices/${entry%%=*}" "${entry#*=}"
done
end acs

begin info
echo "release $(cat /proc/sys/kernel/osrelease)"
echo "cmdline $(cat /proc/cmdline)"
echo "kretprobe $probe"
for prov in /sys/bus/pci/devices/*; do
    [ -d "$prov/p2pmem" ] && echo "p2pmem $(basename "$prov") $(ls "$prov/p2pmem" | tr '\n' ' ')"
done
echo "namespaces $(ls /sys/block | grep -c '^nvme') of $want"
end info

# 1. The capture, before any pair is evaluated (nothing here evaluates one).
/bin/p2pvhelp capture /etc/p2pview-files /etc/p2pview-links /cap
for d in /sys/bus/pci/drivers/*; do mkdir -p "/cap${d}"; done
# With an IOMMU (verify --io --iommu): each function's iommu_group link and the
# group's type, as p2pview's capture keeps them (the mode p2pview infers).
for g in /sys/kernel/iommu_groups/*; do
    [ -d "$g/devices" ] || continue
    mkdir -p "/cap$g"
    cat "$g/type" > "/cap$g/type" 2>/dev/null
    for dev in "$g"/devices/*; do
        real=$(readlink -f "$dev")
        [ -d "/cap$real" ] && ln -s "$(readlink "$real/iommu_group")" "/cap$real/iommu_group"
    done
done
mkdir -p /cap/proc/sys/kernel
cat /proc/cpuinfo > /cap/proc/cpuinfo
cat /proc/cmdline > /cap/proc/cmdline
cat /proc/sys/kernel/osrelease > /cap/proc/sys/kernel/osrelease
echo p2pview-guest > /cap/proc/sys/kernel/hostname
printf '{"format": "p2pview-capture/1", "hostname": "p2pview-guest", "kernel": "%s", "date": "", "p2pview_version": "guest", "root": true, "functions": %s}\n' \
    "$(cat /proc/sys/kernel/osrelease)" "$(ls /sys/bus/pci/devices | wc -l)" > /cap/p2pview-capture.json
begin capture
(cd /cap && tar czf - p2pview-capture.json sys proc) | base64
end capture

# The I/O oracle (p2pview verify --io): queue limits, then every scenario.
if [ "${p2pview_io:-0}" = 1 ]; then
    begin limits
    for blk in /sys/block/nvme*; do
        [ -e "$blk" ] || continue
        ctrl=$(readlink -f "$blk/device/device")
        echo "ns ${blk##*/} ${ctrl##*/}"
        for f in logical_block_size max_hw_sectors_kb max_sectors_kb max_segments \
            max_segment_size virt_boundary_mask; do
            [ -f "$blk/queue/$f" ] && echo "limit ${blk##*/} $f $(cat "$blk/queue/$f")"
        done
    done
    end limits
    begin io
    dmesg -c > /dev/null
    while read -r name client op offset segs iovs before after; do
        [ -n "$after" ] || continue
        ns=""
        for blk in /sys/block/nvme*; do
            ctrl=$(readlink -f "$blk/device/device")
            [ "${ctrl##*/}" = "$client" ] && ns=${blk##*/} && break
        done
        if [ -z "$ns" ]; then
            echo "$name setup namespace ENODEV"
            continue
        fi
        /bin/p2pvhelp io "$name" "/dev/$ns" "$op" "$offset" "$segs" "$iovs" "$before" "$after"
        dmesg -c | sed "s/^/$name dmesg /"
    done < /etc/p2pview-io
    end io
    sync
    poweroff -f
fi

# 2. Every pair through the module (distance) and the kretprobe (map type).
if [ -f /p2pdist.ko ]; then
    echo > $T/trace
    dmesg -c > /dev/null
    insmod /p2pdist.ko
    begin module
    dmesg | grep 'p2pdist: ' | sed 's/.*p2pdist: //'
    end module
    begin maps
    trace_maps
    echo
    end maps
    # Everything the kernel printed, in order: each pair's reasons come just
    # before that pair's "p2pdist:" line.
    begin dmesg
    dmesg
    end dmesg
fi

# 3. O_DIRECT from every namespace into every provider's P2P memory, two ways:
# "dio" through p2pmem/allocate (v6.2+; before, the file does not exist) and
# "bar" through the sysfs mmap of the CMB BAR (QEMU's NVMe has its CMB in BAR 2,
# NVME_CMB_BIR), which GUP refuses on every release. Shell expansions instead of
# basename/readlink forks: each fork costs milliseconds under TCG.
namespaces=""
for blk in /sys/block/nvme*; do
    [ -e "$blk" ] || continue
    ctrl=$(readlink -f "$blk/device/device")
    namespaces="$namespaces ${blk##*/}=${ctrl##*/}"
done
begin dio
for prov in /sys/bus/pci/devices/*; do
    [ -d "$prov/p2pmem" ] || continue
    for entry in $namespaces; do
        ns=${entry%%=*}
        client=${entry#*=}
        echo > $T/trace 2>/dev/null
        res=$(/bin/p2pvhelp dio "$prov" "/dev/$ns")
        echo "${prov##*/} $client $ns $res maps=$(trace_maps 2>/dev/null)"
        echo "${prov##*/} $client $ns $(/bin/p2pvhelp bar "$prov/resource2" "/dev/$ns")"
    done
done
end dio
sync
poweroff -f
