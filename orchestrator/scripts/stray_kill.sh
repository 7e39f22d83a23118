{#
  Stops every process still carrying this deploy root's marker in its environment.
  Layers and servers export the marker and their children inherit it, so this finds what
  an interrupted layer left behind (a pytest still running after Ctrl-C) without ever
  matching by name. Values: marker (NAME=VALUE as exported).
#}
{% include "lib.sh" %}
marker={{ marker }}
strays() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF -- "$marker" && echo "$pid"
  done
}
pids=$(strays)
if [ -n "$pids" ]; then
  # shellcheck disable=SC2086 # one word per pid
  stop_processes 30 $pids
  echo "readiness: stopped stray processes:" $pids
fi
