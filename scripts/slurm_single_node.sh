#!/usr/bin/env bash
# A real single-node SLURM cluster for tests: munged, slurmctld and slurmd as root, every file
# under one folder, the node's real CPU count, no accounting daemon. Debian packages:
# slurm-wlm and munge (`.ci/run` installs them). KillWait is 2 s: submitit ignores the SIGTERM of
# scancel, so the SIGKILL after KillWait is what ends a cancelled job.
#
#   scripts/slurm_single_node.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm_single_node.sh stop DIR
set -euo pipefail
action=${1:?start or stop}
dir=$(realpath -m "${2:?state folder}")
conf="$dir/slurm.conf"

stop() {
    if [ -f "$conf" ] && [ -f "$dir/slurmctld.pid" ]; then  # cancel what still runs, let it drain
        jobs=$(SLURM_CONF="$conf" squeue -h -o %i 2>/dev/null || true)
        [ -z "$jobs" ] || SLURM_CONF="$conf" scancel $jobs 2>/dev/null || true
        for _ in $(seq 20); do
            [ -z "$(SLURM_CONF="$conf" squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
        if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    # any job step of this cluster left behind (its processes carry this cluster's SLURM_CONF)
    for env in /proc/[0-9]*/environ; do
        if { tr '\0' '\n' < "$env"; } 2>/dev/null | grep -qx "SLURM_CONF=$conf"; then
            pid=${env#/proc/}; kill -9 "${pid%/environ}" 2>/dev/null || true
        fi
    done
    sleep 1
}

if [ "$action" = stop ]; then stop; exit 0; fi
[ "$action" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { echo "SLURM unavailable: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 3; }
done
[ "$(id -u)" -eq 0 ] || { echo "SLURM unavailable: the daemons need root here" >&2; exit 3; }

mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
cat > "$conf" <<EOF
ClusterName=pathbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=2
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
stop  # a previous cluster in the same folder
key="$dir/munge/munge.key"
[ -f "$key" ] || { dd if=/dev/urandom bs=1 count=1024 of="$key" 2>/dev/null; chmod 600 "$key"; }
munged --force --key-file="$key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed"
export SLURM_CONF="$conf"
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
    if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then
        echo "export SLURM_CONF=$conf"
        exit 0
    fi
    sleep 0.5
done
echo "SLURM unavailable: the node did not come up (see $dir/slurmctld.log, $dir/slurmd.log)" >&2
exit 4
