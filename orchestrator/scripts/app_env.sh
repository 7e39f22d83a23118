{#
  The environment of the server and of server layers: the application's settings
  overlay and secrets, then everything a client gets. Values: as client_env.sh.
#}
set -a
. {{ layout.secrets }}
set +a
export DJANGO_SETTINGS_MODULE=readiness_settings
export PYTHONPATH={{ layout.etc }}:{{ layout.app }}"${PYTHONPATH:+:$PYTHONPATH}"
{% include "client_env.sh" %}
