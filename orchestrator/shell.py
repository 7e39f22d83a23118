"""Small bash snippets shared by the generated scripts.

Why not ``kill -0``: a killed process whose parent has gone is re-parented to PID 1,
and on some machines (containers, this one) PID 1 reaps slowly, so the process lingers
as a zombie that ``kill -0`` still reports alive. Waiting for a zombie to "exit" turns a
0.1 s stop into a timeout; ``alive`` looks at the process state instead.
"""

from __future__ import annotations

ALIVE = (
    'alive() { [ -r /proc/"$1"/status ] && '
    '! grep -q "^State:[[:space:]]*Z" /proc/"$1"/status 2>/dev/null; }\n'
)
