"""The evidence window's bookkeeping that needs no host: bounds on what is judged."""

from __future__ import annotations

from orchestrator import forensics
from orchestrator.attribution import Window
from orchestrator.evidence import LedgerEvent, Rst


def event(i: int) -> LedgerEvent:
    return LedgerEvent(
        "h1",
        "rest",
        float(i),
        1,
        "t.py::a",
        1,
        1,
        "connect",
        "ECONNREFUSED",
        "ConnectionRefusedError",
        "refused",
        f"10.0.0.3:{40000 + i % 20000}",
        "10.0.0.2:8000",
        False,
        "socket",
    )


def test_a_spinning_retry_loop_is_judged_only_up_to_the_bound_and_the_record_says_so() -> None:
    many = forensics.MAX_JUDGED + 7
    rsts = tuple(Rst("h1", 1.0, "10.0.0.2:8000", "10.0.0.3:1", "eth0", "Out") for _ in range(3))
    window = Window("rest", tuple(event(i) for i in range(many)), rsts, frozenset(), {}, {}, (), {})
    problems: list[str] = []
    bounded = forensics._bounded(window, problems)
    assert len(bounded.events) == forensics.MAX_JUDGED and bounded.rsts == rsts
    assert bounded.events[-1] is window.events[forensics.MAX_JUDGED - 1]
    assert problems == [
        f"layer rest: only the first {forensics.MAX_JUDGED} transport errors and RSTs were "
        "judged (7 errors and 0 RSTs more are in the ledger and capture files)"
    ]
    assert forensics._bounded(bounded, problems) == bounded and len(problems) == 1
