# A log's last bytes for the run record; no file, no output.
[ -f {{ path }} ] && tail -c {{ max_bytes }} {{ path }}
