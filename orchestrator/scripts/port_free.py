"""Exit 0 if nothing accepts connections on ADDRESS PORT, 1 if something does.

Sent to the host on a here-document by server_start.sh, run by the server's venv Python
in isolated mode (``-I``), so that the user's PYTHON* variables, exported there for the
application, cannot change what this helper does.
"""

from __future__ import annotations

import socket
import sys

try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(0)
sys.exit(1)
