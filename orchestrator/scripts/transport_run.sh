{#
  The only command line a script ever gets (bash -c TEXT readiness-run TOKEN). It reads
  "<length>\n<script><stdin...>" from stdin, stores the script in a private directory
  named after the random token, runs it in a new session (so its process group id is its
  pid, recorded for transport_kill.sh) and passes the rest of stdin on to it. bash reads
  `read` input byte by byte from a pipe and coreutils head -c never reads past its count,
  so nothing of the script's stdin is swallowed.
#}
d="${TMPDIR:-/tmp}/readiness-run.$1"
mkdir -m 700 -- "$d" || exit 125
trap 'rm -rf -- "$d"' EXIT
IFS= read -r n || { echo "readiness: no script on stdin" >&2; exit 125; }
head -c "$n" > "$d/script" || exit 125
setsid bash -- "$d/script" <&0 &
echo "$!" > "$d/pid"
wait "$!"
