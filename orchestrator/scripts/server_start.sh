{#
  Stops an earlier server of this deploy, starts a fresh one detached in its own session
  with every stream redirected (so the SSH channel that started it can close), records
  its pid, and waits until it answers over HTTP, from the host itself. The server runs in
  the deploy root's cgroup where the host has one (lib.sh), so teardown finds all of it.
  Values: spec (DjangoServer), layout, venv, env, marker_var, health_url, health_timeout,
  failed_exit.
#}
set -u
mkdir -p {{ layout.run }}
{% include "server_stop.sh" %}
join_deploy_cgroup {{ layout.root }}
{% include "app_env.sh" %}
mode={{ spec.mode }}
address={{ spec.address }}
port={{ spec.port }}
url={{ spec.url }}
health_url={{ health_url }}
python={{ venv }}/bin/python
app={{ layout.app }}
log={{ layout.run }}/server.log
# The fixtures, as "$@".
set -- {{ spec.fixtures | words }}
fail() {
  echo "$1; last lines of the server log:" >&2
  tail -n 30 "$log" >&2
  exit {{ failed_exit }}
}
: > "$log"
cd "$app" || fail "cannot enter $app"
prepare() {
  "$python" "$app"/manage.py "$@" >> "$log" 2>&1 || fail "preparing the database failed"
}
# -I (isolated): the user's env (PYTHONINSPECT, PYTHONSTARTUP, PYTHONPATH, ...) is exported
# above for the application; readiness's own helpers must not run under it.
"$python" -I - "$address" "$port" <<'READINESS_PORT_EOF' || fail "port $port on $address is already in use (another server?)"
{{ source("port_free.py") | heredoc("READINESS_PORT_EOF") }}
READINESS_PORT_EOF
if [ "$mode" = testserver ]; then
  # testserver loads the fixtures into a new test database at start: every run's
  # integration layer begins from the same data.
  setsid "$python" "$app"/manage.py testserver "$@" --addrport {{ spec.hostport }} --noinput \
    < /dev/null >> "$log" 2>&1 &
else
  # Known data for every run: the persistent database is emptied before loading.
  prepare migrate --noinput
  prepare flush --noinput
  if [ "$#" -gt 0 ]; then prepare loaddata "$@"; fi
  setsid {{ venv }}/bin/gunicorn readiness_wsgi:application --chdir "$app" \
    --bind {{ spec.hostport }} --workers {{ spec.workers }} --threads {{ spec.threads }} \
    --access-logfile - < /dev/null >> "$log" 2>&1 &
fi
pid=$!
echo "$pid" > {{ layout.run }}/server.pid
"$python" -I - "$pid" "$health_url" {{ health_timeout }} <<'READINESS_HEALTH_EOF' || fail "the server did not become healthy at $health_url"
{{ source("health_check.py") | heredoc("READINESS_HEALTH_EOF") }}
READINESS_HEALTH_EOF
echo "readiness: server healthy at $url"
