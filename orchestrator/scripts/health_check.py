"""Wait until the server at URL answers, while process PID lives, for at most SECONDS.

Usage: python - PID URL SECONDS. Exit 0 once any answer below 500 comes back; otherwise
exit with the reason (the process exited, or no answer before the deadline). Sent to the
host on a here-document by server_start.sh, run by the server's venv Python
in isolated mode (``-I``), so that the user's PYTHON* variables, exported there for the
application, cannot change what this helper does.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

pid, url, deadline = int(sys.argv[1]), sys.argv[2], time.monotonic() + float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
while time.monotonic() < deadline:
    try:
        # A zombie counts as exited: its parent (the start script) is gone, and PID 1
        # may take its time to reap it.
        with open(f"/proc/{pid}/status") as status:
            if "\nState:\tZ" in status.read():
                raise FileNotFoundError
    except FileNotFoundError:
        sys.exit("the server process exited")
    try:
        with opener.open(url, timeout=2):
            sys.exit(0)
    except urllib.error.HTTPError as err:
        if err.code < 500:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("no answer before the deadline")
