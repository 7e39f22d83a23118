{#
  Unpacks the tar stream on stdin and installs each part it holds; every part replaces
  its folder whole (an atomic rename), so nothing a run added there survives. Values:
  layout, python, parts (space-separated: app, client, wheels-DIGEST, etc), digests
  (app, client, etc: what to record for each part), keep (space-separated digests of the
  venvs still needed), digest_file, venv_failed_exit, marker_var, complete, secrets_file.

  Interrupted (teardown after Ctrl-C, a timeout), it must leave nothing the next probe
  trusts and no secret: the marker makes it findable, the traps remove the incoming
  stream (which holds secrets.env) and half-made folders, a venv is sealed only once
  built, and the settings with the secrets and their digest marker are put in place last.
#}
set -eu
# Marked like every process of this deploy root (layers, servers), so that teardown's
# stray kill stops an install still running after Ctrl-C, pip included.
{% include "marked.sh" %}
root={{ layout.root }}
python={{ python }}
parts={{ parts }}
keep={{ keep }}
digest_file={{ digest_file }}
complete={{ complete }}
app={{ layout.app }}
client={{ layout.client }}
etc={{ layout.etc }}
inc="$root/.incoming"
# Whatever the way out, no copy of the secrets and no half-made folder stays behind.
cleanup() { rm -rf -- "$inc" "$app.new" "$client.new"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$inc"
mkdir -p "$root"
mkdir -m 700 "$inc"
tar -x -C "$inc"
has() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
if has app; then
  # A server kept running (--keep, or a killed orchestrator) must not outlive the code it
  # serves: a later health check could otherwise reach the old one.
{% include "server_stop.sh" %}
fi
# unpack PART TARGET DIGEST
unpack() {
  rm -rf "$2.new"; mkdir -p "$2.new"
  tar -xzf "$inc/$1.tgz" -C "$2.new" --no-same-owner
  echo "$3" > "$2.new/$digest_file"
  rm -rf "$2"; mv "$2.new" "$2"
}
if has app; then unpack app "$app" {{ digests.app }}; fi
if has client; then unpack client "$client" {{ digests.client }}; fi
# Virtualenvs build in parallel (a host with both roles needs two): pip is mostly
# single-threaded, and the cold deploy of an all-on-one host is dominated by it.
pids=""
for part in $parts; do
  case $part in wheels-*) ;; *) continue ;; esac
  venv="$root/venvs/${part#wheels-}"
  mkdir -p "$root/venvs"
  (
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv"
    pipwhl=$(ls "$inc/$part"/pip-*.whl | head -n 1)
    "$venv/bin/python" "$pipwhl/pip" install --quiet --no-index --no-deps \
      --disable-pip-version-check "$inc/$part"/*.whl
    # The seal, written last: what the venv holds now, which the probe checks it against
    # (a package pip-installed or a file changed by a run later makes it rebuilt).
    "$python" -I - seal "$venv" "$complete" <<'READINESS_TREE_EOF'
{{ source("tree_state.py") | heredoc("READINESS_TREE_EOF") }}
READINESS_TREE_EOF
  ) &
  pids="$pids $!"
done
for pid in $pids; do
  wait "$pid" || { echo "building a virtualenv failed" >&2; exit {{ venv_failed_exit }}; }
done
# Old virtualenvs of earlier requirements: remove, so deploy roots do not grow forever.
for v in "$root"/venvs/*/; do
  [ -d "$v" ] || continue
  case " $keep " in *" $(basename "$v") "*) ;; *) rm -rf "$v" ;; esac
done
# Last, once everything else is in place: the settings and secrets, with their digest
# marker, replacing the folder whole (no file of an earlier one stays on the path).
if has etc; then
  chmod 700 "$inc/etc"
  chmod 600 "$inc/etc/"{{ secrets_file }}
  echo {{ digests.etc }} > "$inc/etc/$digest_file"
  rm -rf "$etc"
  mv "$inc/etc" "$etc"
fi
rm -rf "$inc"
echo "readiness: installed"
