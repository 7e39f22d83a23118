{#
  What a host already has (the digests of the code, virtualenvs and settings it holds,
  as marker.* lines) and its facts (fact.* lines); deploy.parse_probe reads them.
  Values: layout, python, digest_file, engine_probe (a script that prints the database
  engine's facts, or empty), cache_dirs and cache_suffixes (space-separated: what the
  bundles never hold), complete (the file that seals a virtualenv).
  Each code tree's digest as it is now and the virtualenvs still as sealed come from
  tree_state.py, in this same round trip: a tree a run changed is not trusted, whatever
  its marker says (orchestrator/deploy.py, missing).
#}
set -u
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
root={{ layout.root }}
python={{ python }}
digest_file={{ digest_file }}
app={{ layout.app }}
client={{ layout.client }}
etc={{ layout.etc }}
mkdir -p "$root" 2>/dev/null
echo "marker.app=$(cat "$app/$digest_file" 2>/dev/null)"
echo "marker.client=$(cat "$client/$digest_file" 2>/dev/null)"
echo "marker.etc=$(cat "$etc/$digest_file" 2>/dev/null)"
# marker.venvs (unchanged since sealed), marker.venvs_changed, marker.{app,client,etc}_tree.
# Without a working Python nothing is printed, so nothing is trusted (and the facts
# below say why the deploy cannot go on).
"$python" -I - probe "$digest_file" {{ cache_dirs }} {{ cache_suffixes }} "$root/venvs" \
  {{ complete }} app "$app" client "$client" etc "$etc" <<'READINESS_TREE_EOF'
{{ source("tree_state.py") | heredoc("READINESS_TREE_EOF") }}
READINESS_TREE_EOF
echo "fact.hostname=$(hostname 2>/dev/null)"
echo "fact.kernel=$(uname -sr)"
echo "fact.cpus=$(nproc 2>/dev/null)"
echo "fact.machine=$(uname -m)"
# One Python start for its version and its venv module (the tree check above is another:
# on a slow host each start costs a tenth of a second). No venv module: no python_venv.
"$python" -c 'import sys; print("fact.python=" + sys.version.split()[0])
import venv; print("fact.python_venv=1")' 2>/dev/null
{% if engine_probe %}
# The database engine's own facts (fact.database_server, the version line of its server).
{% include engine_probe %}
{% endif %}
echo "fact.somaxconn=$(cat /proc/sys/net/core/somaxconn 2>/dev/null)"
echo "fact.tcp_abort_on_overflow=$(cat /proc/sys/net/ipv4/tcp_abort_on_overflow 2>/dev/null)"
echo "fact.tcp_max_syn_backlog=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog 2>/dev/null)"
echo "fact.deploy_root_writable=$([ -w "$root" ] && echo yes || echo no)"
# Like sshd's StrictModes: the root and every folder above it must be ours or root's and
# not writable by others (unless sticky, as /tmp), else another user could swap our code.
unsafe=""
d=$root
while :; do
  info=$(stat -c '%u %a' "$d" 2>/dev/null) || break
  owner=${info% *}
  mode=${info#* }
  if [ "$owner" != "$(id -u)" ] && [ "$owner" != 0 ]; then
    unsafe="$d (owned by uid $owner)"; break
  fi
  sticky=$(( (0$mode & 01000) != 0 )); others=$(( (0$mode & 022) != 0 ))
  if [ "$others" = 1 ] && [ "$sticky" = 0 ]; then unsafe="$d (mode $mode)"; break; fi
  [ "$d" = / ] && break
  d=$(dirname "$d")
done
echo "fact.deploy_root_unsafe=$unsafe"
