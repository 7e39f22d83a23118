"""The index's two pictures, as geometry: where each host, connection and bar goes.

The topology diagram and the timeline are inline SVG (the page makes no request), drawn
by a Jinja template from the values here. Keeping the arithmetic in Python and the
markup in an autoescaping template means a host or layer name is always text, never
SVG, and the layout is tested without parsing markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.record import FlowRecord, LayerRecord, RunRecord

# Left to right in the order a request travels: client, then server, then database.
ROLE_ORDER = {"client": 0, "server": 1, "db": 2}
BOX_MIN_W, BOX_GAP, MARGIN = 130, 44, 10
DIAGRAM_W = 600  # what half of a laptop's page shows at full size; more hosts shrink it
LINE_H, LANE_H = 15, 26
CHAR_W = 6.6  # average width of an 11px sans-serif character: enough to decide truncation


def clip(text: str, width: float) -> str:
    """``text`` cut to what fits ``width`` pixels, with an ellipsis (the full text goes in
    the element's <title>)."""
    fits = max(int(width / CHAR_W), 1)
    return text if len(text) <= fits else text[: fits - 1] + "\u2026"


@dataclass(frozen=True)
class Box:
    """A host: its name, and what a sysadmin checks on it (address, roles, ports)."""

    x: float
    y: float
    w: float
    h: float
    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Edge:
    """A connection between two hosts: it crosses the network, a firewall must allow it."""

    path: str  # the SVG path's d attribute (numbers only)
    arrow: str  # the arrowhead polygon's points
    label: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    notes: tuple[str, ...]  # connections not drawn (the control node's), and caveats


def flow_label(flow: FlowRecord) -> str:
    what = flow.what.replace(" -> ", " \u2192 ")
    if flow.via == "socket":
        return f"{what}: Unix socket"
    return f"{what} :{flow.port}" if flow.port is not None else f"{what} (port not recorded)"


def derived_flows(record: RunRecord) -> list[FlowRecord]:
    """The connections a record older than its ``network`` field implies: every client to
    every server (the port from the server's fingerprint, if taken), every server to the
    database over the link the run chose (a Unix socket when co-located, else TCP)."""
    with_role = {
        role: [h.name for h in record.hosts if role in h.roles]
        for role in ("client", "server", "db")
    }
    flows = []
    for server in with_role["server"]:
        fingerprint = record.fingerprints.get(server)
        port = _port(fingerprint.address) if fingerprint else None
        for client in with_role["client"]:
            flows.append(
                FlowRecord(client, server, "client -> server", port, "tcp", client != server)
            )
        link = record.database_links.get(server, "tcp")
        for db in with_role["db"]:
            via = "socket" if link == "socket" and db == server else "tcp"
            flows.append(FlowRecord(server, db, "server -> database", None, via, db != server))
    return flows


def _port(address: str) -> int | None:
    _, _, port = address.rpartition(":")
    return int(port) if port.isdigit() else None


def topology(record: RunRecord) -> Diagram:
    """Hosts left to right as a request travels; connections that cross the network drawn
    as arrows below them, the ones that stay on a host written inside its box."""
    hosts = sorted(
        record.hosts, key=lambda h: min((ROLE_ORDER.get(r, 3) for r in h.roles), default=3)
    )
    notes: list[str] = []
    flows = list(record.network.flows)
    if not flows:
        flows = derived_flows(record)
        notes.append("network not recorded in this run: connections derived from the roles")
    column = {h.name: i for i, h in enumerate(hosts)}
    inside: dict[str, list[str]] = {h.name: [] for h in hosts}
    crossing = []
    for flow in flows:
        if flow.from_ not in column or flow.to not in column:
            notes.append(f"{flow_label(flow)} ({flow.from_} \u2192 {flow.to})")
        elif flow.crosses and flow.from_ != flow.to:
            crossing.append(flow)
        else:
            inside[flow.from_].append(flow_label(flow))
    contents = {h.name: [*_host_lines(record, h.name), *inside[h.name]] for h in hosts}
    rows = max((len(lines) for lines in contents.values()), default=0)
    box_h = 22 + LINE_H * rows
    # As wide as the longest line needs, within bounds: three hosts fit a half-page column.
    longest = max((len(line) for lines in contents.values() for line in lines), default=0)
    share = (DIAGRAM_W - 2 * MARGIN - BOX_GAP * (len(hosts) - 1)) / max(len(hosts), 1)
    box_w = min(max(longest * CHAR_W + 16, BOX_MIN_W), max(share, BOX_MIN_W))
    boxes = tuple(
        Box(MARGIN + i * (box_w + BOX_GAP), MARGIN, box_w, box_h, h.name, tuple(contents[h.name]))
        for i, h in enumerate(hosts)
    )
    edges = tuple(
        _edge(boxes[column[f.from_]], boxes[column[f.to]], k, f) for k, f in enumerate(crossing)
    )
    width = 2 * MARGIN + max(len(boxes) * (box_w + BOX_GAP) - BOX_GAP, box_w)
    height = MARGIN * 2 + box_h + LANE_H * len(edges) + (8 if edges else 0)
    return Diagram(width, height, boxes, edges, tuple(notes))


def _host_lines(record: RunRecord, host: str) -> list[str]:
    found = next(h for h in record.hosts if h.name == host)
    lines = [found.address, "roles: " + ", ".join(found.roles)]
    for listen in record.network.listens:
        if listen.host == host:
            where = listen.socket or (f":{listen.port}" if listen.port is not None else "")
            lines.append(f"listens {where} ({listen.what})".replace("  ", " "))
    return lines


def _edge(start: Box, end: Box, lane: int, flow: FlowRecord) -> Edge:
    """A connection drawn below the boxes in its own lane: down from the client end, across,
    up into the server end, so edges never cross a box or each other's labels."""
    bottom = start.y + start.h
    y = bottom + LANE_H * (lane + 1)
    shift = 8 * lane
    x1 = start.x + start.w * 0.5 + shift
    x2 = end.x + end.w * 0.5 - shift
    path = f"M{x1:.0f},{bottom:.0f} V{y:.0f} H{x2:.0f} V{bottom + 1:.0f}"
    arrow = f"{x2:.0f},{bottom:.0f} {x2 - 4:.0f},{bottom + 8:.0f} {x2 + 4:.0f},{bottom + 8:.0f}"
    return Edge(path, arrow, flow_label(flow), (x1 + x2) / 2, y - 4)


# --------------------------------------------------------------------------- timeline

LABEL_W, CHART_W, ROW_H, AXIS_H = 170, 780, 18, 22


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    kind: str  # step | deploy | layer | setup
    status: str
    label: str  # what fits inside the bar ("" when nothing does)
    title: str  # the whole story, as a tooltip


@dataclass(frozen=True)
class Lane:
    y: float
    label: str
    title: str
    header: bool  # a run's own lane (its steps), the first of its hosts' lanes


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Gantt:
    width: float
    height: float
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    missing: tuple[str, ...]  # labels of runs whose record has no start times
    notes: tuple[str, ...] = ()  # bars left out, and why


@dataclass(frozen=True)
class _Span:
    lane: str
    start: float
    duration: float
    kind: str
    status: str
    name: str


RUN_LANE = ""  # a run's own lane, for its steps (no host is named "")
# No run lasts a week: a bar that ends later is a broken time (a hand-edited record, a
# clock jump), and drawn it would shrink every real bar to a pixel and, before ticks were
# bounded, fill the page with millions of them. It is left out, with a note.
MAX_SPAN_S = 7 * 24 * 3600.0
MAX_TICKS = 12
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400)


def timeline(records: Sequence[RunRecord], labels: Sequence[str]) -> Gantt:
    """Each run's steps, then per host its deploys and layers, all runs on one time scale
    (seconds from each run's start) so that a slower topology shows as a longer chart.
    What overlaps on one host (two deploys at once) goes on a row of its own below."""
    lanes: list[tuple[str, str, bool]] = []  # label, title, header
    spans: list[tuple[int, _Span]] = []
    missing: list[str] = []
    notes: list[str] = []
    for record, label in zip(records, labels, strict=True):
        every = _spans(record)
        run_spans = [span for span in every if _drawable(span)]
        if len(run_spans) < len(every):
            notes.append(_left_out(label, len(every) - len(run_spans)))
        if not run_spans:
            if not every:
                missing.append(label)
            continue
        by_lane: dict[str, list[_Span]] = {RUN_LANE: [], **{h.name: [] for h in record.hosts}}
        for span in run_spans:
            by_lane.setdefault(span.lane, []).append(span)
        for name, own in by_lane.items():
            header = name == RUN_LANE
            title = f"{label}: {record.inventory}" if header else f"{name} ({label})"
            for row, packed in enumerate(_pack(own)):
                lanes.append(((label if header else name) if row == 0 else "", title, header))
                spans += [(len(lanes) - 1, span) for span in packed]
    end = max((s.start + s.duration for _, s in spans), default=0.0)
    return _layout(lanes, spans, end, tuple(missing), tuple(notes))


def _drawable(span: _Span) -> bool:
    """A bar with a real time: finite, not negative, ending within MAX_SPAN_S of the run's
    start (JSON as Python reads it holds NaN and Infinity; a record can say anything)."""
    start, duration = span.start, span.duration
    if not (math.isfinite(start) and math.isfinite(duration)):
        return False
    return start >= 0 and duration >= 0 and start + duration <= MAX_SPAN_S


def _left_out(label: str, count: int) -> str:
    bars = "bar" if count == 1 else "bars"
    return (
        f"{label}: {count} {bars} not drawn: a start or duration that is not a time "
        f"within {MAX_SPAN_S / 86400:g} days of the run's start"
    )


def _pack(spans: Sequence[_Span]) -> list[list[_Span]]:
    """Spans in rows where none overlaps another (first row that is free; at least one)."""
    rows: list[list[_Span]] = [[]]
    ends = [0.0]
    for span in sorted(spans, key=lambda s: s.start):
        free = next((i for i, end in enumerate(ends) if end <= span.start + 1e-6), None)
        if free is None:
            rows.append([])
            ends.append(0.0)
            free = len(rows) - 1
        rows[free].append(span)
        ends[free] = span.start + span.duration
    return rows


def _spans(record: RunRecord) -> list[_Span]:
    """Everything of one run that has a start time; its own lane holds the steps."""
    spans = [
        _Span(RUN_LANE, s.start_s, s.duration_s, "step", s.status, s.name)
        for s in record.steps
        if s.start_s is not None
    ]
    spans += [
        _Span(d.host, d.start_s, d.duration_s, "deploy", d.status, f"deploy {d.component}")
        for d in record.deploy
        if d.start_s is not None
    ]
    for layer in record.layers:
        spans += _layer_spans(layer)
    return spans


def _layer_spans(layer: LayerRecord) -> list[_Span]:
    if layer.start_s is None:
        return []
    kind = "setup" if layer.setup else "layer"
    return [
        _Span(
            host,
            layer.start_s,
            layer.per_host[host].duration_s if host in layer.per_host else layer.duration_s,
            kind,
            layer.per_host[host].status if host in layer.per_host else layer.status,
            layer.name,
        )
        for host in layer.hosts
    ]


def _layout(
    lanes: Sequence[tuple[str, str, bool]],
    spans: Sequence[tuple[int, _Span]],
    end: float,
    missing: tuple[str, ...],
    notes: tuple[str, ...] = (),
) -> Gantt:
    scale = CHART_W / end if end > 0 else 0.0
    top = AXIS_H
    placed = tuple(
        Lane(top + i * (ROW_H + 4), clip(label, LABEL_W - 8), title, header)
        for i, (label, title, header) in enumerate(lanes)
    )
    bars = []
    for lane, span in spans:
        w = max(span.duration * scale, 1.5)
        what = f"{span.name}: {span.status}, {span.duration:.1f} s from {span.start:.1f} s"
        bars.append(
            Bar(
                LABEL_W + span.start * scale,
                placed[lane].y,
                w,
                span.kind,
                span.status,
                clip(span.name, w - 6) if w > 3 * CHAR_W else "",
                f"{lanes[lane][1]}: {what}",
            )
        )
    marks = _ticks(end)
    hours = len(marks) > 1 and marks[1] >= 3600
    ticks = tuple(
        Tick(LABEL_W + t * scale, f"{t / 3600:g} h" if hours else f"{t:g} s") for t in marks
    )
    height = top + len(placed) * (ROW_H + 4) + 4 if placed else 0
    return Gantt(LABEL_W + CHART_W + 20, height, placed, tuple(bars), ticks, missing, notes)


def _ticks(end: float) -> list[float]:
    """Round times across the run, at most MAX_TICKS of them whatever its length: the step
    is the first round one that fits, else a power of ten that does."""
    if not (math.isfinite(end) and end > 0):
        return []
    fits = MAX_TICKS - 1  # n steps make n + 1 ticks, 0 included
    step = next((float(s) for s in TICK_STEPS if end / s <= fits), None)
    if step is None:
        step = 10.0 ** math.ceil(math.log10(end / fits))
    return [i * step for i in range(min(int(end // step), fits) + 1)]
