#!/usr/bin/env bash
# A single-node SLURM cluster for dlpipe's tests, everything under one folder.
#
#   tests/slurm/cluster.sh install       apt-get the Debian SLURM and munge packages (root)
#   tests/slurm/cluster.sh start DIR     munged, slurmctld, slurmd with two fake GPUs
#   tests/slurm/cluster.sh stop DIR      stop the daemons started in DIR, by their pid files
#
# After `start`, DIR/bin holds wrappers of the client commands (sbatch, squeue, srun, ...) that
# point SLURM_CONF at DIR/etc/slurm.conf: put DIR/bin first on PATH. Jobs inherit that PATH,
# so the `srun` inside a job finds the configuration too (the executor plugin removes every
# SLURM_* variable before it). Nothing is written outside DIR; ports are picked free.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
CLIENTS=(sbatch squeue scontrol srun scancel sinfo sacct sacctmgr sshare)

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "cluster.sh: $what did not come up in ${seconds} s" >&2
    return 1
}

start() {
    local dir
    dir=$(realpath "$1")
    mkdir -p "$dir"/{etc,bin,log,state,spool,munge,munge-key,dev}
    chmod 0755 "$dir/munge"
    chmod 0700 "$dir/munge-key"
    local host socket conf
    host=$(hostname -s)
    socket=$dir/munge/munge.socket.2
    conf=$dir/etc/slurm.conf

    # munge: a private key and socket, so the cluster trusts nobody else on the machine.
    mungekey --create --keyfile="$dir/munge-key/munge.key" --force
    chmod 0400 "$dir/munge-key/munge.key"
    munged --socket="$socket" --key-file="$dir/munge-key/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed" --force
    wait_for 10 munged test -S "$socket"

    # Two fake GPUs: character devices with /dev/null's numbers, so SLURM schedules GPU jobs
    # and sets CUDA_VISIBLE_DEVICES, while nothing can use them.
    for i in 0 1; do
        [ -e "$dir/dev/nvidia$i" ] || mknod "$dir/dev/nvidia$i" c 1 3
    done
    cat >"$dir/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu Type=fake File=$dir/dev/nvidia[0-1]
EOF
    local node
    node=$(slurmd -C | head -1)
    cat >"$conf" <<EOF
ClusterName=dlpipe
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MinJobAge=600
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
$node Gres=gpu:fake:2 State=UNKNOWN
PartitionName=dlpipe Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    for client in "${CLIENTS[@]}"; do
        printf '#!/bin/sh\nSLURM_CONF=%s exec /usr/bin/%s "$@"\n' "$conf" "$client" >"$dir/bin/$client"
        chmod +x "$dir/bin/$client"
    done

    slurmctld -f "$conf"
    wait_for 20 slurmctld "$dir/bin/scontrol" ping
    slurmd -f "$conf"
    wait_for 30 "an idle node" sh -c "'$dir/bin/sinfo' -h -o %T | grep -q idle"
}

stop() {
    local dir
    dir=$(realpath "$1")
    [ -x "$dir/bin/scancel" ] && "$dir/bin/scancel" --full --quiet --partition dlpipe 2>/dev/null || true
    local pidfile pid
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        [ -s "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
    done
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?usage: cluster.sh start DIR}" ;;
    stop) stop "${2:?usage: cluster.sh stop DIR}" ;;
    *) echo "usage: cluster.sh install | start DIR | stop DIR" >&2; exit 2 ;;
esac
