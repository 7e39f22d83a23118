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
