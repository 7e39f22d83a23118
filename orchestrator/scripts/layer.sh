{#
  One layer of the suite on one host: into the deploy root's cgroup (where the host has
  one: so teardown finds even what escapes the marker), its environment, a fresh JUnit
  path, then its command, as the suite author wrote it (shell). Values: root (the deploy
  root), environment (Shell: app_env.sh or client_env.sh, rendered), junit_dir,
  junit_path, layer (Layer), base_url (or None), workdir, command (Shell).
#}
set -u
{% include "lib.sh" %}
join_deploy_cgroup {{ root }}
{{ environment }}
mkdir -p {{ junit_dir }}
rm -f {{ junit_path }}
export READINESS_JUNIT={{ junit_path }} READINESS_LAYER={{ layer.name }}
{% if base_url %}
export READINESS_BASE_URL={{ base_url }}
{% endif %}
cd {{ workdir }} || exit
{{ command }}
