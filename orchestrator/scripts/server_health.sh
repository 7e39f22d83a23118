{#
  Whether this deploy's server still runs and answers its health URL (one short try),
  asked after a layer that needed it failed: a server that died is an infrastructure
  error, not a failing application. Exit 0 if healthy; else 1, with the reason and the
  last lines of the server log on stderr. Values: layout, venv, health_url, seconds.
#}
set -u
{% include "lib.sh" %}
log={{ layout.run }}/server.log
url={{ health_url }}
gone() {
  echo "$1; last lines of its log:" >&2
  tail -n 12 "$log" >&2 || true
  exit 1
}
pid=$(cat {{ layout.run }}/server.pid 2>/dev/null) || gone "it has no pid file"
alive "$pid" || gone "its process ($pid) is gone"
# -I: the user's PYTHON* variables are for the application, not for our own helper.
{{ venv }}/bin/python -I - "$pid" "$url" {{ seconds }} <<'READINESS_HEALTH_EOF' \
  || gone "it does not answer $url"
{{ source("health_check.py") | heredoc("READINESS_HEALTH_EOF") }}
READINESS_HEALTH_EOF
echo "readiness: server healthy"
