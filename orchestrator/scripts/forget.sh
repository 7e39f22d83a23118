# Teardown: the host keeps no secret of ours, and no result of this run.
rm -f {{ secrets }} {{ digest }}
rm -rf {{ results }}
