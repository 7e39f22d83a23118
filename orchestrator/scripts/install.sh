{#
  Unpacks the tar stream on stdin and installs each part it holds; replaces are atomic
  renames. Values: layout, python, parts (space-separated: app, client, wheels-DIGEST,
  etc), digests (app, client, etc: what to record for each part), keep (space-separated
  digests of the venvs still needed), digest_file, venv_failed_exit.
#}
set -eu
root={{ layout.root }}
python={{ python }}
parts={{ parts }}
keep={{ keep }}
digest_file={{ digest_file }}
inc="$root/.incoming"
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
if has app; then unpack app {{ layout.app }} {{ digests.app }}; fi
if has client; then unpack client {{ layout.client }} {{ digests.client }}; fi
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
    touch "$venv/.complete"
  ) &
  pids="$pids $!"
done
for pid in $pids; do
  wait "$pid" || { echo "building a virtualenv failed" >&2; exit {{ venv_failed_exit }}; }
done
if has etc; then
  etc={{ layout.etc }}
  [ -d "$etc" ] || mkdir -m 700 "$etc"
  cp "$inc"/etc/* "$etc"/
  chmod 600 {{ layout.secrets }}
  echo {{ digests.etc }} > "$etc/$digest_file"
fi
# Old virtualenvs of earlier requirements: remove, so deploy roots do not grow forever.
for v in "$root"/venvs/*/; do
  [ -d "$v" ] || continue
  case " $keep " in *" $(basename "$v") "*) ;; *) rm -rf "$v" ;; esac
done
rm -rf "$inc"
echo "readiness: installed"
