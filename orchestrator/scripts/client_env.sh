{#
  The environment of a client layer (and, through app_env.sh, of the server): the venv
  first on PATH, the user's env, and the marker teardown finds strays by (inherited by
  every process a layer or server starts). Values: layout, venv, env (pairs), marker_var.
#}
{% for key, value in env %}
export {{ key }}={{ value }}
{% endfor %}
export {{ marker_var }}={{ layout.root }}
export VIRTUAL_ENV={{ venv }}
export PATH={{ venv }}/bin:"$PATH"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
