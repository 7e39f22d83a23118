{#
  Stops the process group of the script that transport_run.sh started with the same
  token (bash -c TEXT readiness-kill TOKEN): TERM, a short grace, then KILL. Run on a
  timeout, maybe before the wrapper has written the pid: wait a little for it.
#}
{% include "lib.sh" %}
d="${TMPDIR:-/tmp}/readiness-run.$1"
for _ in $(seq 50); do [ -s "$d/pid" ] && break; sleep 0.02; done
p=$(cat -- "$d/pid" 2>/dev/null) || exit 0
stop_processes 5 "-$p"
exit 0
