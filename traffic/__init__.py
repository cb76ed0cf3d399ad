"""fabriclab.traffic: RoCEv2-like hosts and the AI collectives they replay.

packets      scapy layers: RoCEv2 (BTH, RETH, AETH, CNP, ICRC) and PFC / PAUSE; pause-time maths
transport    the per-host RoCEv2-like RC transport on AF_PACKET (go-back-N, CNPs, pacing, PFC)
dcqcn        the DCQCN reaction point (pure, clock-injected) and its presets
scale        time scaling between a real fabric and the testbed
collectives  flow schedules for collectives, and JSON trace replay
metrics      flow / collective records, algbw and busbw (nccl-tests), FCT slowdown, JSON lines
agent        the host agent process (python -m fabriclab.traffic.agent)
runner       the coordinator: starts agents in host namespaces and replays a schedule
cli          ``fabriclab traffic``
iperf        iperf3 TCP/UDP background traffic in namespaces
netns        veth pairs between namespaces (tests, benchmarks) and entering a namespace
bench        measurements for ``fabriclab bench traffic`` (host_pps)
"""
