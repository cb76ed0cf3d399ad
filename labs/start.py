"""Bring a lab up for the student: the network its ``lab.yaml`` names, then the Mininet CLI.

Three ways, by ``start:`` in lab.yaml:

* ``exercise`` — the tutorials layout: the student's program (or the solution) on every switch of
  ``topology.json``, each switch's ``sN-runtime.json`` written over P4Runtime;
* ``scenario`` — fabric.p4 and the controller on the fabric of one variant of the lab's scenario
  file (``scenario: FILE``, ``variant: NAME``), with that variant's switch and ECN settings;
* ``fabric`` — fabric.p4 and the controller on ``topology: {kind: ..., ...}`` (as scenarios
  write it), the switches configured by the lab's ``switch_config: FILE`` if it names one, ECN
  marking if ``ecn: true``, the controller's routing ``policy`` if one is named.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from fabriclab.labs.catalog import LabRun
from fabriclab.topologies.description import FabricDescription


def fabric_of(run: LabRun) -> tuple[FabricDescription, dict]:
    """A scenario or fabric lab's fabric, and FabricNetwork's keyword arguments for it."""
    from fabriclab.scenarios.runner import controller_settings, fabric_description, switch_config
    from fabriclab.scenarios.schema import load_scenario

    options = run.lab.options
    if run.lab.start == "scenario":
        scenario = load_scenario(str(run.file(options["scenario"])))
        config = scenario.variants[options["variant"]]
        return fabric_description(config), {"settings": controller_settings(config),
                                             "switch_config": switch_config(config)}
    from fabriclab.controller.settings import ControllerSettings, EcnSettings
    from fabriclab.topologies.catalog import describe

    from fabriclab.units import parse_duration, parse_rate

    topo = dict(options["topology"])
    kind = topo.pop("kind")
    for key in ("host_rate", "fabric_rate"):
        if key in topo:
            topo[key] = parse_rate(topo[key], f"{run.lab.name}/lab.yaml: topology.{key}")
    if "delay" in topo:
        topo["delay"] = parse_duration(topo["delay"], f"{run.lab.name}/lab.yaml: topology.delay")
    kwargs: dict = {"settings": ControllerSettings(ecn=EcnSettings(enabled=bool(options.get("ecn"))),
                                                   policy=str(options.get("policy", "static")))}
    if options.get("switch_config"):
        from fabriclab.switch.switch_config import load_config

        path = run.file(options["switch_config"])
        load_config(path)        # one clear error now rather than N switches failing
        kwargs["switch_config"] = yaml.safe_load(Path(path).read_text()) or {}
    return describe(kind, topo), kwargs


def network_for(run: LabRun, run_dir: Path, pcap: bool, progress):
    """The lab's network, not yet started."""
    from fabriclab.topologies.network import FabricNetwork

    if run.lab.start == "exercise":
        from fabriclab.labs.exercise import load_exercise
        from fabriclab.labs.exercise_network import ExerciseNetwork

        return ExerciseNetwork(load_exercise(run.lab.path, run.solution), run_dir, pcap=pcap, progress=progress)
    description, kwargs = fabric_of(run)
    return FabricNetwork(description, run_dir, pcap=pcap or bool(run.lab.options.get("pcap")),
                         progress=progress, **kwargs)
