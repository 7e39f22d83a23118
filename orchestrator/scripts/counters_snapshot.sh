{# Both files in one round trip; orchestrator.counters parses them. #}
cat /proc/net/netstat /proc/net/snmp
