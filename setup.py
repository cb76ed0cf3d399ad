"""fabriclab: a Mininet-based lossless Ethernet testbed for AI data-center fabrics.

Every top-level folder that holds Python is mapped into the single ``fabriclab``
namespace, so ``compiler/`` imports as ``fabriclab.compiler`` and so on.
"""
from setuptools import setup

# top-level folder -> subpackage of fabriclab
SUBPACKAGES = ["compiler", "v1model", "p4runtime", "switch", "topologies", "controller", "traffic", "scenarios", "labs", "bench"]

setup(
    name="fabriclab",
    version="0.1.0",
    description="Mininet-based lossless Ethernet testbed for AI data-center fabrics",
    python_requires=">=3.10",
    packages=["fabriclab"] + [f"fabriclab.{name}" for name in SUBPACKAGES],
    package_dir={"fabriclab": "fabriclab", **{f"fabriclab.{name}": name for name in SUBPACKAGES}},
    package_data={"fabriclab.compiler": ["p4include/*.p4", "native_runtime.h"],
                  "fabriclab.switch": ["native_tm.c", "native_ports.c", "switch.yaml"],
                  "fabriclab.bench": ["native_rawflow.c"],
                  "fabriclab.traffic": ["native_transport.c"],
                  "fabriclab.scenarios": ["*.yaml"],
                  # the lab folders: README, skeletons, solutions, topology and runtime JSON, checkers
                  "fabriclab.labs": ["[0-9][0-9]-*/*", "[0-9][0-9]-*/solution/*"]},
    install_requires=[
        # finsy bundles P4Runtime/P4Info stubs generated for current protobuf (upb);
        # the p4runtime wheel's stubs only work in protobuf's slow pure-Python mode.
        "finsy>=0.30,<0.40",
        "grpcio>=1.60,<2",
        "protobuf>=5.26,<8",
        "os-ken>=4.0,<5",
        "WebOb>=1.8,<2",          # the REST API (controller/rest.py), as Ryu's WSGI layer used
        "Routes>=2.3,<3",
        "scapy>=2.6,<2.9",
        "networkx>=3.0,<4",
        "rich>=13,<16",
        "pyyaml>=6,<7",
        "matplotlib>=3.7,<4",
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-timeout>=2.3,<3", "hypothesis>=6.100,<7"],
    },
    entry_points={"console_scripts": ["fabriclab=fabriclab.cli:main"]},
)
