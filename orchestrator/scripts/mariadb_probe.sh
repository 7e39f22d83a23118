{#
  MariaDB's part of the host probe (included by probe.sh): the server's version line, or
  nothing when the host has no server. No values.
#}
server=$(command -v mariadbd || command -v mysqld || true)
echo "fact.database_server=$([ -n "$server" ] && "$server" --version 2>/dev/null | head -n 1)"
