{#
  Whether this instance still answers, asked after a layer that needed it failed: a
  database that died is an infrastructure error, not a failing application. Exit 0 if
  it answers; else 1, with the last lines of its error log on stderr.
  Values: i (MariaDBInstance), missing_exit.
#}
{% include "mariadb_tools.sh" %}
if "$admin" --defaults-file={{ i.config_file }} --connect-timeout=2 ping >/dev/null 2>&1; then
  echo "readiness: database answering"
  exit 0
fi
echo "it does not answer a ping; last lines of its error log:" >&2
tail -n 12 {{ i.error_log }} >&2 || true
exit 1
