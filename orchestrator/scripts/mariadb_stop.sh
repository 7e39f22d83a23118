{#
  Stops the instance mariadb_start.sh started, and only that one: its pid file's process
  must run with the instance's config file. Values: i (MariaDBInstance), remove (bool:
  also delete the whole instance root).
#}
set -u
{% include "lib.sh" %}
if stop_pidfile {{ i.pid_file }} {{ i.config_file }} 300; then
  echo "readiness: database stopped"
fi
{% if remove %}
rm -rf {{ i.root }}
{% endif %}
