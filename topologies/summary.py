"""The table ``fabriclab up`` prints once the fabric is up."""
from __future__ import annotations

from rich.table import Table

from fabriclab.units import format_rate


def bring_up_table(network, report) -> Table:
    d = network.description
    rates = sorted({l.rate_bps for l in d.links})
    table = Table(title=f"fabric up: {d.topology} ({network.target} switches, {network.settings.lb})")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("switches", str(report.switches))
    table.add_row("hosts", str(report.hosts))
    table.add_row("links", f"{report.links} ({', '.join(format_rate(r) + 'bit/s' for r in rates)})")
    table.add_row("routes installed", str(report.routes))
    table.add_row("table entries", str(report.entries))
    for step, seconds in report.steps:
        table.add_row(f"  {step}", f"{seconds:.1f} s")
    table.add_row("time taken", f"{report.seconds:.1f} s")
    table.add_row("routing policy", f"{network.settings.policy} (poll every {network.settings.poll_interval_s * 1e3:g} ms, "
                  f"repair {'on' if network.settings.repair else 'off'})")
    if network.rest_url:
        table.add_row("REST API", network.rest_url)
    if network.target == "python":
        memory = network.memory()
        table.add_row("memory (RSS)", f"{memory['switches_mb']:.0f} MiB in {memory['switch_processes']} switch "
                      f"process(es), {memory['per_switch_mb']:.0f} per switch; controller {memory['controller_mb']:.0f}")
    table.add_row("run directory", str(network.run_dir))
    return table
