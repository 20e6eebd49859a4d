#!/usr/bin/env bash
# A real single-node Slurm cluster on this Debian machine, for CI and for trying
# `snakemake --profile slurm` end to end (tests/scale/test_slurm_cluster.py).
#
#   scripts/slurm-single-node.sh up       install, configure and start the daemons
#   scripts/slurm-single-node.sh down     stop the daemons it started (by their PIDs)
#   scripts/slurm-single-node.sh status   what runs, and what sinfo says
#
# `up` (as root) installs slurm-wlm, munge, slurmdbd and mariadb-server with apt-get when
# they are missing; writes /etc/slurm/slurm.conf, gres.conf and slurmdbd.conf for this
# host (its CPUs and memory from `slurmd -C`; partitions `cpu` (default) and `gpu`;
# METAEXAMPLES_SLURM_GPUS dummy GRES GPUs, default 2, backed by device nodes that are never
# opened: no GPU is involved, jobs only see CUDA_VISIBLE_DEVICES); then starts munged, mariadbd, slurmdbd,
# slurmctld and slurmd in that order, each in the foreground of its own session, and
# records each PID under $METAEXAMPLES_SLURM_DIR/pids (default /var/tmp/metaexamples-slurm).
# The accounting database (slurmdbd + MariaDB) is what makes `sacct` work, which the
# Snakemake executor plugin uses to follow its jobs. Account `metaexamples` exists, so
# jobs may pass `-A metaexamples` (slurm_account).
#
# `up` on a running cluster does nothing; a half-started one is stopped and started again.
# A munged or MariaDB server that was already running (e.g. started by systemd) is used
# and left alone by `down`. Config files that this script did not write are never
# overwritten. Every failure stops with a message that says which step failed and shows
# the end of that daemon's log.
set -euo pipefail

STATE=${METAEXAMPLES_SLURM_DIR:-/var/tmp/metaexamples-slurm}
GPUS=${METAEXAMPLES_SLURM_GPUS:-2}
CLUSTER=metaexamples
ACCOUNT=metaexamples
CONF_DIR=/etc/slurm
MARK="# written by metaexamples scripts/slurm-single-node.sh"
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)
ORDER=(munged mariadbd slurmdbd slurmctld slurmd)
WAIT_S=${METAEXAMPLES_SLURM_WAIT_S:-60}

say() { printf 'slurm-single-node: %s\n' "$*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}
log_tail() { # name: the end of a daemon's log, for an error message
  local f="$STATE/log/$1.log"
  [ -s "$f" ] && { say "last lines of $f:"; tail -n 15 "$f" >&2; }
  return 0
}

# wait_for WHAT CMD...: poll CMD until it succeeds, at most WAIT_S seconds
wait_for() {
  local what=$1 i
  shift
  for ((i = 0; i < WAIT_S * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }

alive() { # name: its recorded PID runs, and is that daemon (not a reused PID)
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ]
}

# start NAME CMD...: run CMD in the background in its own session; record its PID
start() {
  local name=$1
  shift
  : >"$STATE/log/$name.log"
  setsid "$@" >>"$STATE/log/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name.pid"
  sleep 0.3
  alive "$name" || {
    log_tail "$name"
    die "$name exited at start ($*)"
  }
  say "started $name (pid $(pid_of "$name"))"
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get (Debian/Ubuntu only)"
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed (are the Debian mirrors reachable?)"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/log/apt-get.log" 2>&1 || {
    log_tail apt-get
    die "apt-get install ${missing[*]} failed"
  }
}

# write_conf FILE MODE: stdin into FILE, unless FILE exists and is not ours
write_conf() {
  local file=$1 mode=$2 tmp
  if [ -e "$file" ] && ! grep -qF "$MARK" "$file"; then
    die "$file exists and was not written by this script; move it away to use this cluster"
  fi
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$file"
}

configure() {
  local host node_line mem
  host=$(hostname -s)
  # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  node_line=$(slurmd -C | head -n 1)
  [[ $node_line == NodeName=* ]] || die "slurmd -C gave no node line: $node_line"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
  [ -n "$mem" ] || die "no RealMemory in: $node_line"
  # keep 5 % for the daemons; a node whose RealMemory exceeds what it has is drained
  node_line="${node_line/RealMemory=$mem/RealMemory=$((mem * 95 / 100))}"
  local gres_line="" gres_types=""
  if [ "$GPUS" -gt 0 ]; then
    mkdir -p "$STATE/dev"
    # character devices with NVIDIA's major number 195, never opened: slurmd insists on
    # device files, and then sets CUDA_VISIBLE_DEVICES for the jobs
    for ((i = 0; i < GPUS; i++)); do
      [ -c "$STATE/dev/gpu$i" ] && continue
      rm -f "$STATE/dev/gpu$i"
      mknod "$STATE/dev/gpu$i" c 195 "$i" ||
        die "mknod $STATE/dev/gpu$i failed (no CAP_MKNOD?); METAEXAMPLES_SLURM_GPUS=0 runs without GPUs"
    done
    gres_line=" Gres=gpu:$GPUS"
    gres_types="GresTypes=gpu"
  fi
  mkdir -p "$CONF_DIR"
  write_conf "$CONF_DIR/slurm.conf" 644 <<EOF
$MARK
# A single-node cluster: this host is controller, accounting host and the only node.
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.daemon.log
SlurmdLogFile=$STATE/log/slurmd.daemon.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
AccountingStoreFlags=job_comment
MpiDefault=none
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=300
$gres_types
$node_line$gres_line State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
  if [ "$GPUS" -gt 0 ]; then
    write_conf "$CONF_DIR/gres.conf" 644 <<EOF
$MARK
# dummy GPUs: device nodes nothing opens, so that jobs can ask for --gpus (CUDA_VISIBLE_DEVICES is set)
NodeName=$host Name=gpu File=$STATE/dev/gpu[0-$((GPUS - 1))]
EOF
  elif [ -e "$CONF_DIR/gres.conf" ] && grep -qF "$MARK" "$CONF_DIR/gres.conf"; then
    rm -f "$CONF_DIR/gres.conf"
  fi
  # StorageUser root: MariaDB's root@localhost authenticates by unix socket, so no password
  write_conf "$CONF_DIR/slurmdbd.conf" 600 <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.daemon.log
EOF
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
mariadb_works() { mariadb-admin --protocol=socket ping >/dev/null 2>&1; }

start_munged() {
  if munge_works; then
    say "munged already runs: using it"
    return 0
  fi
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key ||
    die "could not create /etc/munge/munge.key"
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
  start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
  wait_for munge munge_works || {
    log_tail munged
    die "munged started but 'munge -n | unmunge' fails"
  }
}

start_mariadb() {
  if mariadb_works; then
    say "a MariaDB server already runs: using it"
    return 0
  fi
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/log/mariadb-install.log" 2>&1 ||
      die "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
  fi
  start mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking \
    --socket=/run/mysqld/mysqld.sock
  wait_for mariadb mariadb_works || {
    log_tail mariadbd
    die "mariadbd does not answer on /run/mysqld/mysqld.sock"
  }
}

cluster_up() { sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

up() {
  [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts system daemons)"
  if cluster_up && alive slurmctld && alive slurmd; then
    say "already up: $(sinfo -h -o '%P %D %T %G' | tr '\n' ';')"
    return 0
  fi
  local name
  for name in "${ORDER[@]}"; do
    if alive "$name"; then
      say "a previous start is half up; stopping it first"
      down
      break
    fi
  done
  mkdir -p "$STATE"/{pids,log,run,slurmctld,slurmd}
  install_packages
  configure
  start_munged
  start_mariadb
  start slurmdbd /usr/sbin/slurmdbd -D
  wait_for slurmdbd sacctmgr -n list cluster || {
    log_tail slurmdbd
    die "slurmdbd does not answer (sacctmgr list cluster)"
  }
  sacctmgr -nP list cluster format=cluster | grep -qw "$CLUSTER" ||
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
  sacctmgr -nP list account format=account | grep -qw "$ACCOUNT" ||
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" \
      Description="metaexamples CI" Organization=metaexamples >/dev/null ||
    die "sacctmgr add account $ACCOUNT failed"
  sacctmgr -nP list user format=user | grep -qw root &&
    sacctmgr -nP list assoc user=root account="$ACCOUNT" format=account | grep -qw "$ACCOUNT" ||
    sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null ||
    die "sacctmgr add user root to $ACCOUNT failed"
  start slurmctld /usr/sbin/slurmctld -D -i
  wait_for slurmctld scontrol ping || {
    log_tail slurmctld
    die "slurmctld does not answer (scontrol ping)"
  }
  start slurmd /usr/sbin/slurmd -D
  wait_for "an idle node" cluster_up || {
    log_tail slurmd
    log_tail slurmctld
    sinfo -R >&2 || true
    die "the node did not come up idle within ${WAIT_S}s"
  }
  say "up: $(sinfo -h -o '%P %D %T %G' | tr '\n' ';') state and logs in $STATE"
}

down() {
  local i name pid
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
    name=${ORDER[i]}
    pid=$(pid_of "$name")
    [ -n "$pid" ] || continue
    if alive "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((t = 0; t < 40; t++)); do
        alive "$name" || break
        sleep 0.25
      done
      if alive "$name"; then
        say "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      say "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/pids/$name.pid"
  done
}

status() {
  local name
  for name in "${ORDER[@]}"; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: -"; fi
  done
  sinfo 2>&1 || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
