{#
  After mariadb_tools.sh: run the provisioning SQL as the instance's administrator over
  its Unix socket. The SQL holds the application's password: it travels inside this
  script (streamed on stdin) and reaches the client on a here-document, never on a
  command line. Values: i (MariaDBInstance), sql.
#}
"$client" --defaults-file={{ i.config_file }} <<'READINESS_SQL_EOF'
{{ sql | heredoc("READINESS_SQL_EOF") }}
READINESS_SQL_EOF
echo "readiness: database provisioned"
