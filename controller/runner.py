"""Runs the os-ken application in this process. os-ken >= 4 has no ``osken-manager`` CLI, so we
do what it did: get the AppManager, instantiate the app, start it and wait.

os-ken 4's hub runs on native threads by default (OSKEN_HUB_TYPE=native): no eventlet monkey
patching, so grpc (which does not work under eventlet's green threads) shares the process
without special care. We refuse the eventlet hub rather than hang inside grpc.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from fabriclab.errors import UserError


def run_controller(fabric: Path, settings: Path, status: Path, program: Path, log_level: str = "INFO",
                   bmv2: tuple[Path, Path] | None = None) -> int:
    """``bmv2``: (p4c-bm2-ss JSON, P4Info text) to push instead of fabriclab's own compilation."""
    if os.environ.get("OSKEN_HUB_TYPE", "native") != "native":
        raise UserError("the fabriclab controller needs os-ken's native hub (unset OSKEN_HUB_TYPE): "
                        "grpc does not run under eventlet")
    logging.basicConfig(level=log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from fabriclab.controller.app import ControllerConfig, FabricController, app_manager

    config = ControllerConfig.load(fabric, settings, status, program, bmv2)
    manager = app_manager.AppManager.get_instance()
    app = manager.instantiate(FabricController, config=config)
    app.start()
    try:
        app.finished.wait()
    finally:
        manager.close()
    return 1 if app.failed else 0
