#!/usr/bin/env bash
# A one-node SLURM cluster with accounting on localhost, for the cluster tests (make test-cluster).
#   tests/cluster/slurm.sh up      install Debian's packages if missing, start (or reuse) it
#   tests/cluster/slurm.sh down    stop every daemon `up` started
#   tests/cluster/slurm.sh env     the variables a client needs (eval "$(... env)")
#   tests/cluster/slurm.sh purge   down, then delete its state
# Needs root. All state (configs, munge key, MariaDB data, spool, logs) lives under
# $DKP_SLURM_DIR (default $TMPDIR/dkp-slurm, TMPDIR falling back to /tmp): nothing else on
# the machine changes but the installed packages and, when `hostname -s` does not resolve,
# one line of /etc/hosts. Clients find the cluster through
# SLURM_CONF=$DKP_SLURM_DIR/etc/slurm.conf. Quiet on success.
set -euo pipefail

DIR=${DKP_SLURM_DIR:-${TMPDIR:-/tmp}/dkp-slurm}
CLUSTER=dkp
PORT_BASE=${DKP_SLURM_PORT_BASE:-16810} # slurmctld +7, slurmd +8, slurmdbd +9, MariaDB +6
CTLD_PORT=$((PORT_BASE + 7)) SLURMD_PORT=$((PORT_BASE + 8)) DBD_PORT=$((PORT_BASE + 9))
DB_PORT=$((PORT_BASE + 6))
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
NODE=$(hostname -s)
CONF=$DIR/etc/slurm.conf
export SLURM_CONF=$CONF

die() { echo "slurm.sh: $*" >&2; exit 1; }

# wait_for SECONDS WHAT COMMAND...: run COMMAND until it succeeds, at most SECONDS seconds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up in time; logs: $DIR/log/"
    sleep 0.2
  done
}

# alive NAME: the daemon NAME whose pid file `up` wrote is running (a stale file's pid, reused
# by another program, does not count).
alive() {
  [[ -s $DIR/run/$1.pid ]] || return 1
  [[ $(ps -o comm= -p "$(cat "$DIR/run/$1.pid")" 2>/dev/null) == "$1" ]]
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq >/dev/null
  # Daemons must not start on install: a policy-rc.d refusing starts, unless the image has one.
  local policy=/usr/sbin/policy-rc.d added=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
  fi
  timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR/log/apt.log" 2>&1 ||
    { [[ -z $added ]] || rm -f "$policy"; die "apt-get install failed: $DIR/log/apt.log"; }
  [[ -z $added ]] || rm -f "$policy"
}

resolve_hostname() {
  # Lightning takes the master address from SLURM's node name: it must resolve.
  getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >>/etc/hosts
}

write_configs() {
  local cpus memory
  cpus=$(nproc)
  memory=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 8 / 10))
  mkdir -p "$DIR"/{etc,run,log,spool/ctld,spool/d,munge,mysql}
  : >"$DIR/etc/plugstack.conf"
  cat >"$CONF" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
ReturnToService=2
JobRequeue=0
KillWait=10
SlurmctldTimeout=30
SlurmdTimeout=60
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$DIR/munge/munge.socket
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  # slurmdbd reads slurmdbd.conf beside SLURM_CONF and refuses one others can read.
  (
    umask 077
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=dkp-test
StorageLoc=slurm_acct_db
EOF
  )
}

start_munge() {
  alive munged && return 0
  chown munge:munge "$DIR/munge"
  chmod 700 "$DIR/munge"
  if [[ ! -s $DIR/munge/munge.key ]]; then
    (umask 077 && dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none)
    chown munge:munge "$DIR/munge/munge.key"
  fi
  # munged runs as its user; it writes its pid file into a directory that user owns.
  runuser -u munge -- munged --force --socket="$DIR/munge/munge.socket" \
    --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for 20 munged test -s "$DIR/munge/munged.pid"
  cp "$DIR/munge/munged.pid" "$DIR/run/munged.pid"
  wait_for 20 munged munge --socket="$DIR/munge/munge.socket" -n
}

mysql_root() { mariadb --socket="$DIR/mysql/mysqld.sock" -u root "$@"; }

start_mariadb() {
  # MariaDB exits silently unless its pid, socket and log live in a directory mysql owns.
  chown mysql:mysql "$DIR/mysql"
  if ! alive mariadbd; then
    if [[ ! -d $DIR/mysql/data/mysql ]]; then
      timeout 120 mariadb-install-db --user=mysql --datadir="$DIR/mysql/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed: $DIR/log/mariadb-install.log"
    fi
    setsid mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql/data" \
      --socket="$DIR/mysql/mysqld.sock" --pid-file="$DIR/mysql/mysqld.pid" \
      --log-error="$DIR/mysql/mysqld.err" --bind-address=127.0.0.1 --port="$DB_PORT" \
      --innodb-buffer-pool-size=64M --skip-name-resolve </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB mysql_root -e 'SELECT 1'
    cp "$DIR/mysql/mysqld.pid" "$DIR/run/mariadbd.pid"
  fi
  mysql_root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'dkp-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

start_slurmdbd() {
  alive slurmdbd && return 0
  slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
  sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" ||
    timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

start_slurm() {
  alive slurmctld || slurmctld -f "$CONF"
  wait_for 30 slurmctld scontrol ping
  alive slurmd || slurmd -f "$CONF" -N "$NODE"
  # ReturnToService=2 brings a node back from an earlier run's down or drain state.
  wait_for 60 "node $NODE" node_idle
}

node_idle() {
  local state
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null) || return 1
  [[ $state == idle* || $state == mixed* || $state == allocated* ]] && return 0
  [[ $state == down* || $state == drain* ]] && scontrol update nodename="$NODE" state=resume
  return 1
}

up() {
  [[ $(id -u) == 0 ]] || die "needs root (it starts munged, MariaDB and the SLURM daemons)"
  mkdir -p "$DIR/log"
  install_packages
  resolve_hostname
  if alive slurmctld && alive slurmd && node_idle 2>/dev/null; then
    return 0
  fi
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
}

stop() {
  local name=$1 pid
  alive "$name" || { rm -f "$DIR/run/$name.pid"; return 0; }
  pid=$(cat "$DIR/run/$name.pid")
  kill "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$DIR/run/$name.pid"
}

down() {
  [[ -d $DIR/run ]] || return 0
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    stop "$name"
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  purge) down && rm -rf "$DIR" ;;
  *) die "usage: $0 up|down|env|purge" ;;
esac
