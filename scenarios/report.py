"""Reports of a scenario run: PNG plots (matplotlib) and one self-contained report.html.

Input is the run's results (``results.json`` shape): per variant the summary metrics and a
``timeseries`` block sampled by the runner::

    timeseries = {
        "t": [seconds since start, ...],
        "queue_pkts": {"leaf2:3/q3": [depth per sample], ...},      # per hot port and queue
        "throughput_mbps": {"leaf2:3": [Mbit/s per sample], ...},   # per egress port
        "pause_intervals": [[t_start, t_end, "leaf2:1", priority], ...],
        "flow_rate_mbps": {"flow name": [[t, Mbit/s], ...]},        # sender-side rate (DCQCN)
        "fct_s": [flow completion times], "cct_s": [collective completion times],
    }
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on test machines and CI
import matplotlib.pyplot as plt  # noqa: E402

HOT_PORTS = 4  # queue plots show the ports whose queues grew most
SUMMARY_METRICS = [
    ("drops.lossless", "lossless drops"), ("drops.lossy", "lossy drops"), ("pfc_pause_tx", "PFC pauses sent"),
    ("pfc_pause_rx", "PFC pauses received"), ("ecn_marked", "ECN marks"), ("cnp", "CNPs"),
    ("retransmissions", "retransmissions"), ("max_queue_pkts", "max queue (pkts)"), ("hot_queue_mean_pkts", "hot queue mean (pkts)"),
    ("fairness", "Jain fairness"), ("cct_s", "CCT (s)"),
    ("busbw_mbps", "busbw (Mbit/s)"), ("victim_mbps", "victim (Mbit/s)"),
    ("paused_lanes", "paused lanes"), ("frozen_s", "frozen (s)"), ("pfcwd_storms", "PFC watchdog storms"),
    ("host_pfc_tx", "host PFC frames sent"), ("host_rx_drops", "host receive drops"),
    ("flows_completed", "flows completed"), ("flows_incomplete", "flows incomplete"),
    ("link_down_drops", "frames cut at a down link"), ("repair_ms", "repair (ms)"),
    ("elephants_mbps", "elephants (Mbit/s)"), ("elephants_of_ideal", "elephants / ideal"),
    ("mice_fct_p99_ms", "mice FCT p99 (ms)"), ("pinned_flows", "pinned flows"),
    ("fidelity.status", "fidelity"), ("fidelity.lateness_p99_us", "frame lateness p99 (µs)"),
    ("fidelity.loop_lag_p99_us", "switch loop lag p99 (µs)"), ("fidelity.pacing_p99_us", "host pacing error p99 (µs)"),
]


def metric(result: dict, path: str) -> Any:
    node: Any = result
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _variant_axes(count: int, title: str, sharey: bool = True) -> tuple[plt.Figure, list]:
    fig, axes = plt.subplots(1, count, figsize=(5.2 * count, 3.6), squeeze=False, sharey=sharey)
    fig.suptitle(title)
    return fig, list(axes[0])


def _plot_busiest(variants: dict[str, dict], series_key: str, rank, count: int, title: str, ylabel: str,
                  path: Path) -> Path:
    """One panel per variant with the ``count`` series of ``series_key`` that ``rank`` puts first."""
    fig, axes = _variant_axes(len(variants), title)
    for ax, (name, result) in zip(axes, variants.items()):
        ts = result.get("timeseries", {})
        series = ts.get(series_key, {})
        chosen = sorted(series, key=lambda k: rank(series[k]), reverse=True)[:count]
        for key in chosen:
            ax.plot(ts["t"][-len(series[key]):], series[key], label=key)
        _mark_link_events(ax, result)
        ax.set_title(name)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(ylabel)
        if chosen:
            ax.legend(fontsize=7)
    return _save(fig, path)


def _mark_link_events(ax, result: dict) -> None:
    """The scenario's timed link events as dashed lines: red when a link went down, green up."""
    for ev in result.get("link_events") or []:
        ax.axvline(ev["done_s"], color="tab:red" if ev["state"] == "down" else "tab:green", linestyle="--",
                   linewidth=1)


def plot_queues(variants: dict[str, dict], out: Path) -> Path:
    return _plot_busiest(variants, "queue_pkts", lambda v: max(v or [0]), HOT_PORTS,
                         "Queue depth at the hottest ports", "queue depth (packets)", out / "queues.png")


def plot_pauses(variants: dict[str, dict], out: Path) -> Path:
    fig, axes = _variant_axes(len(variants), "PFC pause intervals (who was paused, when)", sharey=False)
    for ax, (name, result) in zip(axes, variants.items()):
        intervals = result.get("timeseries", {}).get("pause_intervals", [])
        lanes = sorted({f"{port} p{prio}" for _, _, port, prio in intervals})
        for row, lane in enumerate(lanes):
            spans = [(t0, max(t1 - t0, 1e-4)) for t0, t1, port, prio in intervals if f"{port} p{prio}" == lane]
            ax.broken_barh(spans, (row - 0.4, 0.8), color="tab:red")
        ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
        ax.set_title(f"{name}: {len(intervals)} pause intervals")
        ax.set_xlabel("time (s)")
    return _save(fig, out / "pauses.png")


def plot_flow_rates(variants: dict[str, dict], out: Path) -> Path:
    fig, axes = _variant_axes(len(variants), "Per-flow sending rate (DCQCN reaction point)")
    for ax, (name, result) in zip(axes, variants.items()):
        for flow, points in sorted(result.get("timeseries", {}).get("flow_rate_mbps", {}).items()):
            if points:
                ax.step([p[0] for p in points], [p[1] for p in points], where="post", label=flow)
        ax.set_title(name)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Mbit/s)")
        if ax.lines:
            ax.legend(fontsize=7)
        _mark_link_events(ax, result)
    return _save(fig, out / "flow_rates.png")


def plot_throughput(variants: dict[str, dict], out: Path) -> Path:
    return _plot_busiest(variants, "throughput_mbps", sum, 6, "Throughput per link (busiest)", "Mbit/s",
                         out / "throughput.png")


def plot_completion(variants: dict[str, dict], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, result in variants.items():
        ts = result.get("timeseries", {})
        times = sorted(ts.get("cct_s") or ts.get("fct_s") or [])
        if times:
            ax.step(times, [(i + 1) / len(times) for i in range(len(times))], where="post", label=name)
    ax.set_xlabel("completion time (s)")
    ax.set_ylabel("CDF")
    ax.set_title("Flow / collective completion times")
    if ax.lines:
        ax.legend()
    return _save(fig, out / "completion.png")


def plot_variants(variants: dict[str, dict], out: Path) -> Path:
    shown = [(path, label) for path, label in SUMMARY_METRICS
             if any(isinstance(metric(r, path), (int, float)) for r in variants.values())]
    cols = 3
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (path, label) in zip(axes.flat, shown):
        values = [metric(r, path) or 0 for r in variants.values()]
        ax.bar(list(variants), values, color="tab:blue")
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.suptitle("Variants side by side")
    return _save(fig, out / "variants.png")


PLOTS = (plot_variants, plot_queues, plot_pauses, plot_flow_rates, plot_throughput, plot_completion)


def write_report(results: dict, out: Path) -> Path:
    """Write every PNG and report.html into ``out``; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    variants = results["variants"]
    # a variant a target could not run (PFC on bmv2) has a column but no plots
    measured = {name: r for name, r in variants.items() if "not_supported" not in r}
    images = [plot(measured, out) for plot in PLOTS] if measured else []
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{_fmt(metric(r, path))}</td>" for r in variants.values()) + "</tr>"
        for path, label in SUMMARY_METRICS)
    header = "".join(f"<th>{html.escape(v)}</th>" for v in variants)
    unsupported = "".join(f"<li class=unsupported>{html.escape(name)}: {html.escape(r['not_supported'])}</li>"
                          for name, r in variants.items() if "not_supported" in r)
    several = len(results.get("targets", ())) > 1
    marks = {True: ("held", "✔"), False: ("failed", "✘"), None: ("unsupported", "–")}
    checks = "".join(
        "<li class={}>{} ".format(*(("invalid", "⚠") if e.get("valid") is False else marks[e["held"]]))
        + (f"[{html.escape(e['target'])}] " if several else "")
        + f"<code>{html.escape(e['text'])}</code> — {html.escape(e.get('detail', ''))}</li>"
        for e in results.get("expectations", []))
    degraded = "".join(f"<li class=invalid>{html.escape(name)}: {html.escape(reason)}</li>"
                       for name, r in variants.items() for reason in (r.get("fidelity") or {}).get("reasons", []))
    figures = "".join(
        f"<figure><img alt='{p.stem}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{p.stem}</figcaption></figure>"
        for p in images)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>fabriclab: {html.escape(results['scenario'])}</title><style>
body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}} th{{background:#f4f4f4}}
li.held{{color:#176617}} li.failed{{color:#a11}} li.unsupported{{color:#8a6d00}} li.invalid{{color:#a60}}
img{{max-width:100%}} figure{{margin:1em 0}}
</style></head><body>
<h1>Scenario {html.escape(results['scenario'])}</h1><p>{html.escape(results.get('description', ''))}</p>
<h2>Summary</h2><table><tr><th></th>{header}</tr>{rows}</table><ul>{unsupported}</ul>
<h2>Expectations</h2><p>verdict: <b>{html.escape(results.get('verdict', ''))}</b></p><ul>{checks}</ul>
<h2>Fidelity</h2><p>Every switch's frame lateness and loop lag and every host's pacing error, 99th
percentile against its budget (README, "Fidelity"); a degraded variant's expectations are not valid.</p>
<ul>{degraded or "<li class=held>every variant ok</li>"}</ul>
<h2>Plots</h2>{figures}
</body></html>"""
    report = out / "report.html"
    report.write_text(page)
    return report


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))

