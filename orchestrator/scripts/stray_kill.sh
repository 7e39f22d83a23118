{#
  Stops every process still carrying this deploy root's marker in its environment, and
  every process of the deploy root's cgroup. Layers and servers export the marker and
  their children inherit it, so this finds what an interrupted layer left behind (a
  pytest still running after Ctrl-C) without ever matching by name; a process that
  dropped its environment (`setsid env -i ...`) is still in the cgroup, where the host
  has cgroup v2 (lib.sh). The cgroup is removed afterwards. Says which way it looked.
  Values: marker (NAME=VALUE as exported), root (the deploy root).
#}
{% include "lib.sh" %}
marker={{ marker }}
root={{ root }}
strays() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF -- "$marker" && echo "$pid"
  done
}
if cgroup=$(deploy_cgroup "$root"); then
  echo "readiness: looking for strays by marker and in cgroup $cgroup"
else
  cgroup=""
  echo "readiness: looking for strays by marker only (no cgroup v2 on this host)"
fi
found=$(strays)
if [ -n "$cgroup" ]; then found="$found $(cgroup_pids "$cgroup")"; fi
pids=""
for pid in $found; do
  case " $pids " in *" $pid "*) ;; *) pids="${pids:+$pids }$pid" ;; esac
done
if [ -n "$pids" ]; then
  # shellcheck disable=SC2086 # one word per pid
  stop_processes 30 $pids
  echo "readiness: stopped stray processes:" $pids
fi
# What stop_processes could not see: forked meanwhile, or already gone from the list.
if [ -n "$cgroup" ]; then clear_cgroup "$cgroup"; fi
