"""Benchmark of the ledger hook's overhead: prints figures, asserts nothing.

The hook's wheel is installed by pip into a fresh venv (which also sees this project's
packages, for requests). A minimal keep-alive HTTP server runs in a thread of this
process on 127.0.0.1: it answers as fast as Python can, so the hook's share is as large
as it can be (behind a Django view it is far smaller). A client process of that venv
then makes ``--requests`` requests, timed inside the process (start-up excluded), with
and without ``READINESS_LEDGER``, ``--rounds`` times in alternating order; the median of
the rounds' ratios is the figure (the machine's load is noisy), the best times are
shown too. Clients: http.client with a new connection per request (connect, address
caching and the per-socket state every time), http.client on one keep-alive connection,
and a requests Session. Then the hook's cost per socket call, on a socket pair in a
tight loop (no network, little noise). Also: the start-up of an interpreter, where the ``.pth`` line
is all an interpreter without ``READINESS_LEDGER`` pays.

No root, no lab. Run: ``.venv/bin/python bench/bench_ledger.py [--requests 2000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hookvenv import venv_with_hook  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

CLIENT = """\
import http.client, sys, time
kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if kind == "requests":
    import requests
    session = requests.Session()
    url = f"http://127.0.0.1:{port}/item"
    fetch = lambda: session.get(url).content
elif kind == "keep-alive":
    conn = http.client.HTTPConnection("127.0.0.1", port)
    def fetch():
        conn.request("GET", "/item")
        return conn.getresponse().read()
else:
    def fetch():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/item", headers={"Connection": "close"})
        body = conn.getresponse().read()
        conn.close()
        return body
fetch()
started = time.perf_counter()
for _ in range(count):
    fetch()
print(time.perf_counter() - started)
"""
# The hook's own cost, without the network's noise: a send and a receive on a socket
# pair, in a tight loop.
CALLS = """\
import socket, time
a, b = socket.socketpair()
buffer = bytearray(16)
count = 200000
started = time.perf_counter()
for _ in range(count):
    a.sendall(b"x")
    b.recv_into(buffer)
print((time.perf_counter() - started) / count)
"""
KINDS = {
    "http.client, new connection": "new",
    "http.client, keep-alive": "keep-alive",
    "requests.Session": "requests",
}


def serve() -> int:
    """A keep-alive HTTP server in threads of this process; its port."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                _, data = data.split(b"\r\n\r\n", 1)
                conn.sendall(RESPONSE)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    port: int = listener.getsockname()[1]
    return port


def make_venv(root: Path) -> Path:
    """A venv with the hook's wheel installed by pip; this project's packages behind it."""
    return venv_with_hook(root, see_project=True)


def environment(ledger: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("READINESS_")}
    if ledger is not None:
        env.update(READINESS_LEDGER=str(ledger), READINESS_LAYER="bench")
    return env


def timed(python: Path, args: list[str], ledger: Path | None) -> float:
    """Seconds the client printed (its loop only)."""
    done = subprocess.run(
        [str(python), *args], env=environment(ledger), capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def startup(python: Path, ledger: Path | None, code: str, rounds: int) -> float:
    """Best wall time of an interpreter running ``code``, start-up included."""
    args = [
        "-c",
        f"import subprocess, sys, time\nbest = 9e9\nfor _ in range({rounds}):\n"
        f"    t = time.perf_counter(); subprocess.run([{str(python)!r}, '-c', {code!r}])\n"
        "    best = min(best, time.perf_counter() - t)\nprint(best)",
    ]
    return timed(Path(sys.executable), args, ledger)


def compare(python: Path, call: list[str], ledger: Path, rounds: int) -> list[tuple[float, float]]:
    """(seconds without, seconds with) of each round; the order alternates, so that a
    drift of the machine's load does not favour one side."""
    results = []
    for round_ in range(rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        seconds = {hooked: timed(python, call, ledger if hooked else None) for hooked in order}
        results.append((seconds[False], seconds[True]))
    return results


def figures(results: list[tuple[float, float]], args: argparse.Namespace) -> str:
    """Best times per request, and the median of the rounds' ratios with the range of
    their middle half: the spread says how much of the ratio is the machine's noise."""
    without = min(w for w, _ in results) / args.requests * 1e6
    hooked = min(h for _, h in results) / args.requests * 1e6
    ratios = sorted(h / w for w, h in results)
    ratio = statistics.median(ratios)
    low, high = ratios[len(ratios) // 4], ratios[-1 - len(ratios) // 4]
    return (
        f"best without {without:6.1f} us/request, with {hooked:6.1f} us/request; "
        f"median ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f} %), middle half {low:.3f}-{high:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per client run")
    parser.add_argument("--rounds", type=int, default=11, help="runs with and without the hook")
    args = parser.parse_args()
    port = serve()
    with tempfile.TemporaryDirectory(prefix="readiness-bench-ledger.") as tmp:
        root = Path(tmp)
        python = make_venv(root)
        ledger = root / "ledger.jsonl"
        (root / "client.py").write_text(CLIENT)
        print(
            f"{args.requests} requests over loopback per run, {args.rounds} rounds of a run "
            "without and a run with the hook (order alternating)"
        )
        for label, kind in KINDS.items():
            call = [str(root / "client.py"), kind, str(port), str(args.requests)]
            print(f"  {label:30} " + figures(compare(python, call, ledger, args.rounds), args))
        calls = compare(python, ["-c", CALLS], ledger, args.rounds)
        bare = statistics.median(w for w, _ in calls) * 1e6
        added = statistics.median(h - w for w, h in calls) * 1e6
        print(
            f"  a sendall + recv_into pair: {bare:.2f} us without the hook, {added:+.2f} us with it"
        )
        lines = len(ledger.read_text().splitlines()) if ledger.exists() else 0
        print(f"  ledger lines written (no errors expected): {lines}")
        for label, code in (("an empty interpreter", "pass"), ("import socket", "import socket")):
            bare = startup(python, None, code, 10 * args.rounds)
            with_hook = startup(python, ledger, code, 10 * args.rounds)
            print(
                f"  start-up, {label:20} best without {bare * 1e3:6.1f} ms, "
                f"best with {with_hook * 1e3:6.1f} ms"
            )


if __name__ == "__main__":
    main()
