{#
  Helpers shared by the scripts, rendered into each script that includes it (a script
  reaches the host as one text, so there is nothing to source there).

  Why process state from /proc and not `kill -0`: a killed process whose parent has gone
  is re-parented to PID 1, and on some machines (containers, this one) PID 1 reaps
  slowly, so the process lingers as a zombie that `kill -0` still reports alive; waiting
  for a zombie to "exit" turns a 0.1 s stop into a timeout. Not `ps` either: minimal
  hosts lack procps, and the fields needed are in /proc/PID/stat ("PID (COMM) STATE PPID
  PGRP ..."; COMM may hold spaces and parentheses, hence the cut after the last ") ").
  Only bash builtins in the loops: a host with many processes is scanned quickly.
  Every function returns 0 unless it answers a question, so `set -e` scripts can use them.
#}
# alive PID: whether process PID is running (a zombie is not).
alive() {
  local stat
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*") "}
  case $stat in Z* | X* | x*) return 1 ;; esac
  return 0
}

# group_alive PGID: whether any process of process group PGID is running.
group_alive() {
  local f stat state pgrp
  kill -0 -- "-$1" 2>/dev/null || return 1
  for f in /proc/[0-9]*/stat; do
    { read -r stat < "$f"; } 2>/dev/null || continue
    stat=${stat##*") "}
    state=${stat%% *}
    stat=${stat#* }
    stat=${stat#* }
    pgrp=${stat%% *}
    if [ "$pgrp" = "$1" ]; then
      case $state in Z | X | x) ;; *) return 0 ;; esac
    fi
  done
  return 1
}

# stop_processes TENTHS TARGET...: send TERM to every TARGET, a PID or -PGID as for kill
# (-PGID is the process group only: a group that is gone is never mistaken for a process
# that reuses its number), wait up to TENTHS tenths of a second until none is running,
# then KILL what still is.
stop_processes() {
  local tenths=$1 target targets="" left i=0
  shift
  for target in "$@"; do
    case ${target#-} in '' | *[!0-9]*) continue ;; esac
    targets="$targets $target"
  done
  [ -n "$targets" ] || return 0
  # shellcheck disable=SC2086 # one word per target
  kill -TERM -- $targets 2>/dev/null || true
  while :; do
    left=""
    for target in $targets; do
      case $target in
        -*) if group_alive "${target#-}"; then left="$left $target"; fi ;;
        *) if alive "$target"; then left="$left $target"; fi ;;
      esac
    done
    [ -n "$left" ] || return 0
    [ "$i" -lt $((tenths * 2)) ] || break
    i=$((i + 1))
    sleep 0.05
  done
  # shellcheck disable=SC2086 # one word per target
  kill -KILL -- $left 2>/dev/null || true
  return 0
}

# stop_pidfile PIDFILE MARK TENTHS: stop the process group (or process) whose pid PIDFILE
# holds, with stop_processes, if the process's command line contains MARK: a pid file
# left by a crash may name a recycled pid, and a stranger must never get a signal.
# Fails (does nothing) when there is no such process of ours.
stop_pidfile() {
  local pid
  pid=$(cat -- "$1" 2>/dev/null) || return 1
  alive "$pid" || return 1
  { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$2" || return 1
  # Ours (checked above): its group if it leads one, else the process alone.
  if kill -0 -- "-$pid" 2>/dev/null; then
    stop_processes "$3" "-$pid"
  else
    stop_processes "$3" "$pid"
  fi
}

# Processes that leave their session and drop their environment (`setsid env -i CMD &`
# in a layer) carry neither a process group nor the marker that teardown looks for; a
# cgroup holds them all the same: a process cannot leave it without writing to cgroupfs.
# So layers and servers move themselves into one cgroup (v2) per deploy root, where the
# host has cgroup v2 mounted and lets us write to it (root), and teardown kills what is
# left in it. Elsewhere (no cgroup v2, a container without rights) the marker alone.

# deploy_cgroup ROOT: print the cgroup of deploy root ROOT, "<cgroup2 mount>/readiness/"
# and a digest of ROOT (a name safe for any ROOT); fail if no cgroup v2 is mounted. The
# mount is looked up, not assumed: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified
# on a hybrid one.
deploy_cgroup() {
  local line mnt="" digest
  while IFS= read -r line; do
    case ${line#* - } in cgroup2\ *) ;; *) continue ;; esac
    read -r _ _ _ _ mnt _ <<< "$line"
    break
  done 2>/dev/null < /proc/self/mountinfo
  # mountinfo escapes odd characters (\040 for a space): such a mount point is not used.
  case $mnt in '' | *\\*) return 1 ;; esac
  digest=$(printf '%s' "$1" | sha256sum 2>/dev/null) || return 1
  printf '%s/readiness/%s\n' "$mnt" "${digest:0:16}"
}

# join_deploy_cgroup ROOT: move this shell, and so whatever it starts from now on, into
# ROOT's cgroup if the host allows it; silently nothing otherwise.
join_deploy_cgroup() {
  local cgroup
  cgroup=$(deploy_cgroup "$1") || return 0
  mkdir -p -- "$cgroup" 2>/dev/null || return 0
  { echo "$$" > "$cgroup/cgroup.procs"; } 2>/dev/null || true
  return 0
}

# cgroup_pids CGROUP: the running processes of CGROUP, one a line (never this shell).
cgroup_pids() {
  local pid
  { while read -r pid; do
    [ "$pid" != "$$" ] && alive "$pid" && echo "$pid"
  done < "$1/cgroup.procs"; } 2>/dev/null
  return 0
}

# clear_cgroup CGROUP: kill whatever still runs in CGROUP (cgroup.kill, which also gets
# what forks meanwhile, where the kernel has it; else KILL to each pid), wait until it is
# empty and remove it. For what stop_processes has already asked to TERM.
clear_cgroup() {
  local left i=0
  [ -d "$1" ] || return 0
  while left=$(cgroup_pids "$1") && [ -n "$left" ]; do
    if [ "$i" -ge 40 ]; then
      echo "readiness: cgroup $1 still holds" $left >&2
      return 0
    fi
    if [ -e "$1/cgroup.kill" ] && ! grep -qx "$$" "$1/cgroup.procs" 2>/dev/null; then
      { echo 1 > "$1/cgroup.kill"; } 2>/dev/null || true
    else
      # shellcheck disable=SC2086 # one word per pid
      kill -KILL $left 2>/dev/null || true
    fi
    i=$((i + 1))
    sleep 0.05
  done
  rmdir -- "$1" 2>/dev/null || true
  return 0
}
