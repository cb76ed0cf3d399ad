"""fabriclab.switch: the software switch process — ports, traffic manager, PFC, runtime API."""
