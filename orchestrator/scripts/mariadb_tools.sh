{#
  The start of every MariaDB script but stop: strict mode, and the server and client
  tools found on PATH (Debian keeps mariadbd in /usr/sbin) or exit missing_exit.
  Values: missing_exit.
#}
set -eu
{% include "lib.sh" %}
export PATH="$PATH:/usr/sbin:/usr/local/sbin:/usr/local/bin"
server=$(command -v mariadbd || command -v mysqld || true)
client=$(command -v mariadb || command -v mysql || true)
admin=$(command -v mariadb-admin || command -v mysqladmin || true)
installdb=$(command -v mariadb-install-db || command -v mysql_install_db || true)
if [ -z "$server" ] || [ -z "$client" ] || [ -z "$admin" ] || [ -z "$installdb" ]; then
  echo "MariaDB server or client tools not found (need mariadbd, mariadb, mariadb-admin and" \
       "mariadb-install-db on PATH); install them, e.g. 'apt-get install mariadb-server" \
       "mariadb-client'" >&2
  exit {{ missing_exit }}
fi
