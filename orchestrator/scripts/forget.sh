# Teardown: the host keeps no secret of ours (an install cut short may have left its
# incoming stream, which holds a copy), and no result of this run.
rm -f {{ secrets }} {{ digest }}
rm -rf {{ incoming }}
rm -rf {{ results }}
