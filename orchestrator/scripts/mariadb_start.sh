{#
  After mariadb_tools.sh: write the config, initialise the datadir once, start the
  server unless it answers already, wait until it does. Idempotent: a running, answering
  instance is left alone, so a warm redeploy costs one ping.
  Values: i (MariaDBInstance), config (my.cnf text), install_flags (words).
#}
root={{ i.root }}
cnf={{ i.config_file }}
datadir={{ i.datadir }}
pidfile={{ i.pid_file }}
errlog={{ i.error_log }}
umask 077
mkdir -p "$root"
chmod 700 "$root"
cat > "$cnf.new" <<'READINESS_CNF_EOF'
{{ config | heredoc("READINESS_CNF_EOF") }}
READINESS_CNF_EOF
changed=0
if cmp -s "$cnf.new" "$cnf"; then rm -f "$cnf.new"; else mv "$cnf.new" "$cnf"; changed=1; fi
# The marker is written only after a complete install: an install killed half-way
# (or a full disk) is wiped and redone instead of failing every later start.
if [ ! -f "$datadir/.readiness-installed" ]; then
  rm -rf "$datadir"
  "$installdb" --defaults-file="$cnf" {{ install_flags | words }} --auth-root-authentication-method=socket \
    --skip-test-db > "$root/install.log" 2>&1 || {
      echo "mariadb-install-db failed:" >&2
      tail -n 20 "$root/install.log" >&2
      exit 11
  }
  touch "$datadir/.readiness-installed"
fi
if [ "$changed" = 1 ] && [ -f "$pidfile" ]; then
  # New address, port or settings: a server still running with the old ones must go.
  if stop_pidfile "$pidfile" "$cnf" 300; then echo "readiness: database stopped"; fi
fi
if "$admin" --defaults-file="$cnf" --connect-timeout=2 ping >/dev/null 2>&1; then
  echo "readiness: database already running"
else
  : > "$errlog"
  setsid "$server" --defaults-file="$cnf" < /dev/null > "$root/mysqld.out" 2>&1 &
  started=$!
  i=0
  while ! "$admin" --defaults-file="$cnf" --connect-timeout=1 ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 300 ] || ! alive "$started"; then
      echo "the database server did not start; last lines of its error log:" >&2
      tail -n 20 "$errlog" >&2 || true
      exit 12
    fi
    sleep 0.1
  done
  echo "readiness: database started"
fi
