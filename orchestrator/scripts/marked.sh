{#
  Included first by a script whose work must be findable by teardown's stray kill (an
  install, a database start: both may still run when a Ctrl-C starts the teardown).
  Every process of a deploy root carries the marker in its environment, and the stray
  kill looks for it in /proc/PID/environ. An `export` reaches only the commands started
  after it, not this shell's own /proc/PID/environ: so the shell runs this script again,
  once, with the marker in its environment (same pid, same stdin).
  Values: marker_var, marker_root.
#}
readiness_marker_var={{ marker_var }}
readiness_marker_root={{ marker_root }}
if [ "${!readiness_marker_var-}" != "$readiness_marker_root" ]; then
  export "$readiness_marker_var=$readiness_marker_root"
  if [ -f "$0" ]; then exec bash -- "$0"; fi
fi
