"""fabriclab: a Mininet-based lossless Ethernet testbed for AI data-center fabrics."""
from pathlib import Path

__version__ = "0.1.0"

# The repository (or install) root: p4/ programs and scenarios are found relative to it.
ROOT = Path(__file__).resolve().parent.parent
P4_DIR = ROOT / "p4"
