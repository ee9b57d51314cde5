"""The two charts of :mod:`course_lib.dashboard`, drawn as SVG text.

SVG is drawn by the browser: building the text costs the kernel well under a
millisecond, where a matplotlib figure costs tens (see ``bench/dashboard.py``),
and an ipywidgets ``HTML`` widget shows it as it is.

Both functions are pure: data in, one ``<svg>`` string out.
"""

from __future__ import annotations

import math
from html import escape

__all__ = ["memory_chart", "nice_ticks", "timeline_chart"]

#: Colours of engines 0, 1, 2, ... (matplotlib's tab10), then again.
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
FONT = 'font-family="sans-serif" font-size="11"'
#: Margins around the plotting area: left, right, top, bottom (pixels).
MARGINS = (62, 190, 26, 28)
#: At most this many points per memory line: a long run is thinned, not cut.
MAX_POINTS = 300


def colour(engine_id):
    """The colour of an engine, the same in both charts."""
    return COLOURS[engine_id % len(COLOURS)]


def nice_ticks(high, n=5):
    """About ``n`` round ticks from 0 to at least ``high``.

    Examples
    --------
    >>> nice_ticks(9.3)
    [0, 2, 4, 6, 8, 10]
    >>> nice_ticks(0)
    [0, 1]
    """
    if not high > 0:
        return [0, 1]
    raw = high / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) if step < 1 else int(i * step) for i in range(count + 1)]


def _frame(width, height, title, x_ticks, x_scale, y_ticks=(), y_scale=None, y_label=""):
    """Axes, ticks and the title, as SVG elements."""
    left, right, top, bottom = MARGINS
    parts = [
        f'<text x="{left}" y="16" {FONT} font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>',
    ]
    for tick in x_ticks:
        x = x_scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{height - bottom}" x2="{x:.1f}" y2="{height - bottom + 4}" '
            'stroke="#444"/>'
            f'<text x="{x:.1f}" y="{height - bottom + 15}" {FONT} text-anchor="middle">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<text x="{width - right}" y="{height - 4}" {FONT} text-anchor="end">seconds</text>'
    )
    for tick in y_ticks:
        y = y_scale(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 5}" y="{y + 4:.1f}" {FONT} text-anchor="end">{tick:g}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="12" y="{(top + height - bottom) / 2:.0f}" {FONT} text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + height - bottom) / 2:.0f})">{escape(y_label)}</text>'
        )
    return parts


def _svg(width, height, parts, name):
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="course-dashboard-{name}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect width="{width}" height="{height}" fill="white"/>{body}</svg>'
    )


def memory_chart(samples, *, width=760, height=220, title="Memory of each engine"):
    """Each engine's PSS (solid) and RSS (dashed) over time, in MiB.

    Parameters
    ----------
    samples : list of dict
        ``{"time_s": float, "engines": {engine_id: {"rss_mb", "pss_mb"}}}`` in
        time order (``pss_mb`` may be None where the OS has no PSS), with
        ``"host_free_mb"`` where the host's available memory is known.

    Returns
    -------
    str
        One ``<svg>`` element.

    Examples
    --------
    >>> svg = memory_chart([{"time_s": 0.0, "engines": {0: {"rss_mb": 180, "pss_mb": 120}}},
    ...                     {"time_s": 1.0, "engines": {0: {"rss_mb": 190, "pss_mb": 125}}}])
    >>> svg.startswith("<svg") and svg.count("<polyline") == 2
    True
    """
    left, right, top, bottom = MARGINS
    if len(samples) > MAX_POINTS:  # every k-th sample, and always the last one
        step = math.ceil(len(samples) / MAX_POINTS)
        samples = samples[-1::-step][::-1]
    end = max([5.0] + [s["time_s"] for s in samples])
    values = [
        v
        for s in samples
        for m in s["engines"].values()
        for v in (m["rss_mb"], m["pss_mb"])
        if v is not None
    ]
    y_ticks = nice_ticks(max(values, default=100) * 1.05, 4)
    x_ticks = nice_ticks(end, 6)
    x_high, y_high = x_ticks[-1], y_ticks[-1]

    def x_scale(t):
        return left + (width - left - right) * t / x_high

    def y_scale(v):
        return height - bottom - (height - top - bottom) * v / y_high

    parts = _frame(width, height, title, x_ticks, x_scale, y_ticks, y_scale, "MiB")
    engine_ids = sorted({e for s in samples for e in s["engines"]})
    for row, engine_id in enumerate(engine_ids):
        kept = [
            (s["time_s"], s["engines"][engine_id]) for s in samples if engine_id in s["engines"]
        ]
        for key, dash, stroke in (("pss_mb", "", 2), ("rss_mb", ' stroke-dasharray="5 3"', 1)):
            points = " ".join(
                f"{x_scale(t):.1f},{y_scale(m[key]):.1f}" for t, m in kept if m[key] is not None
            )
            if points:
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{colour(engine_id)}" '
                    f'stroke-width="{stroke}"{dash}/>'
                )
        last = kept[-1][1]
        pss = "n/a" if last["pss_mb"] is None else f"{last['pss_mb']:.0f}"
        y = top + 14 + 16 * row
        parts.append(
            f'<rect x="{width - right + 10}" y="{y - 9}" width="10" height="10" '
            f'fill="{colour(engine_id)}"/>'
            f'<text x="{width - right + 25}" y="{y}" {FONT}>engine {engine_id}: '
            f"PSS {pss}, RSS {last['rss_mb']:.0f}</text>"
        )
    y = top + 14 + 16 * len(engine_ids)
    parts.append(
        f'<text x="{width - right + 10}" y="{y + 4}" {FONT} fill="#555">'
        "solid PSS, dashed RSS (MiB)</text>"
    )
    if samples and samples[-1].get("host_free_mb") is not None:
        parts.append(
            f'<text x="{width - right + 10}" y="{y + 24}" {FONT} font-weight="bold">'
            f"host: {samples[-1]['host_free_mb'] / 1024:.1f} GiB available</text>"
        )
    if not engine_ids:
        parts.append(
            f'<text x="{left + 10}" y="{top + 30}" {FONT}>no engine on this host yet</text>'
        )
    return _svg(width, height, parts, "memory")


def timeline_chart(tasks, engine_ids, now_s, *, width=760, title="Tasks on each engine"):
    """One row per engine, one bar per task, from its start to its end (or to now).

    Parameters
    ----------
    tasks : list of dict
        ``{"engine_id", "start_s", "end_s" (None while it runs), "label"}``.
    engine_ids : list of int
        The rows, top to bottom (engines with no task yet get an empty row).
    now_s : float
        Seconds since the view started: where running bars end.

    Returns
    -------
    str
        One ``<svg>`` element.

    Examples
    --------
    >>> svg = timeline_chart([{"engine_id": 0, "start_s": 0.5, "end_s": 1.5, "label": "f"},
    ...                       {"engine_id": 1, "start_s": 0.6, "end_s": None, "label": "g"}],
    ...                      [0, 1], now_s=2.0)
    >>> svg.count('class="task done"'), svg.count('class="task running"')
    (1, 1)
    """
    left, right, top, bottom = MARGINS
    row_height = 24
    height = top + bottom + row_height * max(1, len(engine_ids)) + 6
    x_ticks = nice_ticks(max(5.0, now_s), 6)
    x_high = x_ticks[-1]

    def x_scale(t):
        return left + (width - left - right) * max(0.0, t) / x_high

    parts = _frame(width, height, title, x_ticks, x_scale)
    rows = {engine_id: i for i, engine_id in enumerate(engine_ids)}
    counts = dict.fromkeys(engine_ids, 0)
    busy = dict.fromkeys(engine_ids, 0.0)
    for i, task in enumerate(tasks):
        row = rows.get(task["engine_id"])
        if row is None:
            continue
        end = now_s if task["end_s"] is None else task["end_s"]
        x0, x1 = x_scale(task["start_s"]), x_scale(end)
        y = top + 4 + row * row_height
        state = "running" if task["end_s"] is None else "done"
        counts[task["engine_id"]] += 1
        busy[task["engine_id"]] += max(0.0, end - task["start_s"])
        shade = 0.55 if state == "running" else (1.0 if i % 2 else 0.8)
        tip = f"{task['label']}: engine {task['engine_id']}, {task['start_s']:.2f} to {end:.2f} s"
        parts.append(
            f'<rect class="task {state}" x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}" '
            f'height="{row_height - 6}" fill="{colour(task["engine_id"])}" '
            f'fill-opacity="{shade}" stroke="white" stroke-width="0.5">'
            f"<title>{escape(tip)}</title></rect>"
        )
    for engine_id, row in rows.items():
        y = top + 4 + row * row_height + (row_height - 6) / 2 + 4
        parts.append(
            f'<text x="{left - 6}" y="{y:.0f}" {FONT} text-anchor="end">engine {engine_id}</text>'
            f'<text x="{width - right + 10}" y="{y:.0f}" {FONT}>{counts[engine_id]} tasks, '
            f"busy {busy[engine_id]:.1f} s</text>"
        )
    now = x_scale(now_s)
    parts.append(
        f'<line x1="{now:.1f}" y1="{top}" x2="{now:.1f}" y2="{height - bottom}" '
        'stroke="#999" stroke-dasharray="2 2"/>'
    )
    return _svg(width, height, parts, "timeline")
