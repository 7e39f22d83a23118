"""The run record: written as JSON, read back typed, old versions migrated, bad ones refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.junit import TestCounts
from orchestrator.record import (
    SCHEMA,
    AttributionRecord,
    CounterRecord,
    DeployRecord,
    HostLayerRecord,
    HostRecord,
    LayerRecord,
    LedgerRecord,
    RecordError,
    RstRecord,
    RunRecord,
    from_json,
)
from orchestrator.store import RunStore, read_record
from tests.schema_check import assert_valid_record


def a_record() -> RunRecord:
    record = RunRecord(
        run_id="r1",
        inventory="single",
        inventory_file="/x/single.yaml",
        suite="broker",
        topology="all-on-one",
        started_at="2026-01-01T00:00:00Z",
        database_links={"h1": "socket"},
    )
    record.hosts.append(HostRecord("h1", "10.0.0.2", ["db", "server"], "lab", {"python": "3.11"}))
    record.deploy.append(DeployRecord("h1", "server", "ok", 1.5, ["app"], 10, 1))
    record.layers.append(
        LayerRecord(
            "unit",
            "server",
            ["h1"],
            "passed",
            2.0,
            TestCounts(3, 3, 0, 0, 0),
            per_host={"h1": HostLayerRecord("passed", 0, 2.0, False, TestCounts(3, 3))},
        )
    )
    record.counters["unit"] = {
        "h1": CounterRecord({"Tcp.OutRsts": 1}, {"Tcp.OutRsts": 3}, {"Tcp.OutRsts": 2})
    }
    return record


def test_a_record_written_by_the_store_reads_back_equal(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    record = a_record()
    store.write_record(record)
    assert read_record(tmp_path) == record
    data = json.loads((tmp_path / "run.json").read_text())
    assert_valid_record(data)
    assert data["schema"] == SCHEMA
    assert data["layers"][0]["tests"] == {
        "total": 3,
        "passed": 3,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "retried": 0,
    }
    assert data["ledger"]["collected"] is False and "transport" not in data


def test_a_version_1_record_is_read_with_its_transport_field_renamed() -> None:
    data: dict[str, Any] = a_record().to_json()
    data["schema"] = "readiness.run/1"
    data["transport"] = data.pop("ledger")
    record = from_json(data)
    assert record.schema == SCHEMA and record.ledger.collected is False
    assert record.layers[0].per_host["h1"].tests.passed == 3


def test_a_version_2_record_reads_with_nothing_collected() -> None:
    data: dict[str, Any] = a_record().to_json()
    data["schema"] = "readiness.run/2"
    data["ledger"] = {"collected": False}
    del data["fingerprints"]
    record = from_json(data)
    assert record.schema == SCHEMA
    assert record.ledger == LedgerRecord() and record.fingerprints == {}


def test_an_attributed_reset_is_written_with_from_and_reads_back() -> None:
    record = a_record()
    rst = RstRecord("10.0.0.2:8000", "10.0.0.3:41000", 1.5, ["h1 eth0 Out", "h2 eth0 In"])
    record.ledger.resets.append(
        AttributionRecord(
            "rest",
            None,
            None,
            None,
            "10.0.0.3:41000",
            "10.0.0.2:8000",
            rst,
            "server",
            "h1",
            "closed-with-unread-data",
            "high",
            ["h1 TcpExt.TCPAbortOnClose +1"],
        )
    )
    data = json.loads(json.dumps(record.to_json()))
    assert_valid_record(data)
    assert data["ledger"]["resets"][0]["rst"]["from"] == "10.0.0.2:8000"
    assert "from_" not in data["ledger"]["resets"][0]["rst"]
    assert from_json(data) == record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="readiness.run/99"), "unknown run record schema"),
        (lambda d: d.pop("run_id"), "missing field 'run_id'"),
        (lambda d: d["layers"][0].update(duration_s="slow"), "run.layers[0].duration_s"),
        (lambda d: d["hosts"][0].update(roles="db"), "run.hosts[0].roles: expected a list"),
        (lambda d: d.update(verdict=1), "run.verdict: expected str"),
    ],
)
def test_a_record_that_is_not_one_is_refused_with_the_field_named(
    change: Any, message: str
) -> None:
    data = a_record().to_json()
    change(data)
    with pytest.raises(RecordError, match=re.escape(message)):
        from_json(data)


def test_an_integer_duration_is_read_as_a_float() -> None:
    data = a_record().to_json()
    data["layers"][0]["duration_s"] = 2
    assert from_json(data).layers[0].duration_s == 2.0
