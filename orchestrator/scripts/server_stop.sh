{#
  Stops this deploy's application server, if one runs. Values: layout.
  Included by server_start.sh and install.sh too.
#}
set -u
{% include "lib.sh" %}
# Ours if its command line runs from this deploy root (the venv, manage.py): unlike the
# working directory, that survives the app folder being replaced by a redeploy.
if stop_pidfile {{ layout.run }}/server.pid {{ layout.root ~ "/" }} 100; then
  echo "readiness: server stopped"
fi
rm -f {{ layout.run }}/server.pid
