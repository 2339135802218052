#!/usr/bin/env bash
# A throw-away one-node Slurm for tests (Debian slurm-wlm + munge, as root,
# no systemd): its own munged on a private socket, slurmctld and slurmd on
# loopback ports, with config, state, spool, logs and pid files all under
# one directory. Nothing in /etc is touched.
#
#   tests/slurm/cluster.sh start   start it (prints the directory; clients need
#                                  `export SLURM_CONF=$DIR/slurm.conf`, see $DIR/env)
#   tests/slurm/cluster.sh status  sinfo and squeue
#   tests/slurm/cluster.sh stop    cancel its jobs, stop the daemons, remove the directory
#                                  (KEEP=1 keeps it, for reading the logs)
# The directory is $ICL_SLURM_DIR (default /tmp/icl-slurm-test). Exit 77 when
# slurm-wlm/munge are not installed or when not root.
set -euo pipefail
DIR=${ICL_SLURM_DIR:-/tmp/icl-slurm-test}
CONF=$DIR/slurm.conf

need() {
  if [ "$(id -u)" != 0 ]; then echo "cluster.sh: needs root (skipping)" >&2; exit 77; fi
  local p
  for p in slurmctld slurmd munged sbatch squeue sinfo scancel; do
    command -v "$p" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    if ! command -v "$p" >/dev/null 2>&1; then
      echo "cluster.sh: $p not found: install slurm-wlm munge (skipping)" >&2
      exit 77
    fi
  done
}

port_in_use() { # is a TCP port listened on?
  local hex
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    awk -v h=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == h {f=1} END {exit !f}'
}

free_port() {
  local p=$1
  while port_in_use "$p" || port_in_use "$((p + 1))"; do p=$((p + 2)); done
  echo "$p"
}

pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null || true; }

stop_pidfile() { # pidfile name
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "cluster.sh: $2 ($pid) did not stop; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}

start() {
  need
  if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(pid_of "$DIR/slurmctld.pid")" 2>/dev/null; then
    echo "cluster.sh: already running in $DIR" >&2
    exit 1
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR"/{state,spool,log,munge}
  chmod 755 "$DIR"

  # munge: a fresh key and a private socket, run as the munge user
  local mu=munge
  id "$mu" >/dev/null 2>&1 || mu=root
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chown -R "$mu": "$DIR/munge"
  chmod 755 "$DIR/munge"
  chmod 400 "$DIR/munge/munge.key"
  local -a mopts=(--key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket"
                  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log"
                  --seed-file="$DIR/munge/munged.seed")
  if [ "$mu" != root ] && ! runuser -u "$mu" -- test -x "$DIR/munge"; then
    echo "cluster.sh: the $mu user cannot reach $DIR (make its parent directories world-executable)" >&2
    rm -rf "$DIR"
    exit 1
  fi
  if [ "$mu" = root ]; then munged --force "${mopts[@]}"; else runuser -u "$mu" -- munged "${mopts[@]}"; fi
  for _ in $(seq 50); do [ -S "$DIR/munge/munge.socket" ] && break; sleep 0.1; done
  munge -n --socket="$DIR/munge/munge.socket" | unmunge --socket="$DIR/munge/munge.socket" >/dev/null

  local host cpus mem p node
  host=$(hostname -s)
  node=$(slurmd -C 2>/dev/null | head -n1)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  p=$(free_port "${ICL_SLURM_PORT:-26817}")
  # the node line from `slurmd -C` (sockets, cores), with a little less memory than the total
  node=$(echo "$node" | sed -E "s/RealMemory=[0-9]+/RealMemory=$mem/")
  [ -n "$node" ] || node="NodeName=$host CPUs=$cpus RealMemory=$mem"
  cat >"$CONF" <<CONF
# one-node test cluster written by tests/slurm/cluster.sh
ClusterName=icltest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$p
SlurmdPort=$((p + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MaxArraySize=10001
MinJobAge=600
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  echo "export SLURM_CONF=$CONF" >"$DIR/env"
  export SLURM_CONF=$CONF
  slurmctld -c -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -q '^idle'; then
      echo "$DIR"
      return 0
    fi
    sleep 0.2
  done
  echo "cluster.sh: the node did not come up within 20 s; logs:" >&2
  tail -n 20 "$DIR"/log/*.log >&2 || true
  stop
  exit 1
}

stop() {
  [ -d "$DIR" ] || return 0
  export SLURM_CONF=$CONF
  if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(pid_of "$DIR/slurmctld.pid")" 2>/dev/null; then
    scancel --full --quiet --user=root 2>/dev/null || true
  fi
  stop_pidfile "$DIR/slurmd.pid" slurmd
  stop_pidfile "$DIR/slurmctld.pid" slurmctld
  stop_pidfile "$DIR/munge/munged.pid" munged
  if [ "${KEEP:-0}" = 1 ]; then echo "cluster.sh: kept $DIR"; else rm -rf "$DIR"; fi
}

status() {
  export SLURM_CONF=$CONF
  sinfo
  squeue
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
