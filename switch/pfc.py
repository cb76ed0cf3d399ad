"""Priority-based Flow Control (IEEE 802.1Qbb) frames and the per-port PFC state machine.

Frame (IEEE 802.1Qbb clause 36 / IEEE 802.3 Annex 31D): destination 01:80:C2:00:00:01,
EtherType 0x8808 (MAC Control), opcode 0x0101, a 16-bit class-enable vector (bit i enables
priority i; the upper 8 bits are zero), then eight 16-bit timers, one per priority, in
*quanta* of 512 bit times at the port's speed (IEEE 802.3 clause 31B.2). A timer of 0 means
"resume now". Legacy IEEE 802.3x PAUSE (Annex 31B) uses the same destination and EtherType
with opcode 0x0001 and a single timer that pauses the whole link.

Frames here are built as the kernel's AF_PACKET sockets carry them: without the 4-byte FCS,
so the minimum frame is padded to 60 bytes (64 on the wire once the MAC appends the FCS).

``PfcState`` holds one port's two roles:

* as a *receiver of pauses* (the egress side): per-priority "paused until" times set by PFC
  frames arriving on this port, and the time spent paused;
* as a *sender of pauses* (the ingress side): the buffer bytes held by packets that arrived on
  this port, per priority, split into shared-buffer bytes and headroom bytes, with XOFF/XON
  hysteresis and the refresh of a pause before it expires while congestion lasts.

It never reads a clock: every method takes ``now_ns``.
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

PFC_DST_MAC = bytes.fromhex("0180c2000001")
MAC_CONTROL_ETHERTYPE = 0x8808
OPCODE_PAUSE = 0x0001          # IEEE 802.3x, whole link
OPCODE_PFC = 0x0101            # IEEE 802.1Qbb, per priority
QUANTUM_BITS = 512             # one pause quantum = 512 bit times (IEEE 802.3 31B.2)
MAX_QUANTA = 0xFFFF
NUM_PRIORITIES = 8
MIN_FRAME_NO_FCS = 60          # 64-byte minimum frame minus the FCS the MAC appends

NEVER = 1 << 62                # a time (ns) that never comes

log = logging.getLogger(__name__)

_PFC_BODY = struct.Struct("!6s6sHHH8H")
_PAUSE_BODY = struct.Struct("!6s6sHHH")
_HEADER = struct.Struct("!HH")  # EtherType, opcode


@dataclass(frozen=True)
class MacControlFrame:
    """A parsed MAC Control frame: PFC (per-priority timers) or legacy PAUSE (one timer)."""

    opcode: int
    class_enable: int                      # bit i = priority i; 0xFF for legacy PAUSE
    quanta: tuple[int, ...]                # eight timers (legacy PAUSE: its timer, repeated)

    @property
    def is_pfc(self) -> bool:
        return self.opcode == OPCODE_PFC


def quanta_to_ns(quanta: int, rate_bps: int) -> int:
    """Pause duration of ``quanta`` at ``rate_bps``: quanta × 512 bit times.

    (scapy's contrib helper assumes 1.024 µs per quantum at 1 Gbit/s; the standard says 512 ns.)
    """
    return quanta * QUANTUM_BITS * 1_000_000_000 // rate_bps


def build_pfc_frame(src_mac: bytes, timers: dict[int, int]) -> bytes:
    """A PFC frame enabling the priorities in ``timers`` (priority -> quanta; 0 = resume)."""
    vector = 0
    values = [0] * NUM_PRIORITIES
    for priority, quanta in timers.items():
        if not 0 <= priority < NUM_PRIORITIES or not 0 <= quanta <= MAX_QUANTA:
            raise ValueError(f"bad PFC timer: priority {priority}, quanta {quanta}")
        vector |= 1 << priority
        values[priority] = quanta
    body = _PFC_BODY.pack(PFC_DST_MAC, src_mac, MAC_CONTROL_ETHERTYPE, OPCODE_PFC, vector, *values)
    return body.ljust(MIN_FRAME_NO_FCS, b"\0")


def build_pause_frame(src_mac: bytes, quanta: int) -> bytes:
    """A legacy IEEE 802.3x PAUSE frame (whole link)."""
    if not 0 <= quanta <= MAX_QUANTA:
        raise ValueError(f"bad PAUSE quanta {quanta}")
    body = _PAUSE_BODY.pack(PFC_DST_MAC, src_mac, MAC_CONTROL_ETHERTYPE, OPCODE_PAUSE, quanta)
    return body.ljust(MIN_FRAME_NO_FCS, b"\0")


def is_mac_control(frame: bytes) -> bool:
    """True for any frame with EtherType 0x8808: the MAC consumes these, the pipeline never sees them."""
    return len(frame) >= 14 and frame[12] == 0x88 and frame[13] == 0x08


def parse_mac_control(frame: bytes) -> MacControlFrame | None:
    """Decode a PFC or PAUSE frame; ``None`` for anything else (other opcodes, short frames)."""
    if len(frame) < 18 or not is_mac_control(frame):
        return None
    _, opcode = _HEADER.unpack_from(frame, 12)
    if opcode == OPCODE_PFC and len(frame) >= _PFC_BODY.size:
        fields = _PFC_BODY.unpack_from(frame)
        return MacControlFrame(OPCODE_PFC, fields[4] & 0xFF, tuple(fields[5:]))
    if opcode == OPCODE_PAUSE:
        (quanta,) = struct.unpack_from("!H", frame, 16)
        return MacControlFrame(OPCODE_PAUSE, 0xFF, (quanta,) * NUM_PRIORITIES)
    return None


class PfcState:
    """One port's PFC state: pauses it honours (egress) and pauses it sends (ingress)."""

    def __init__(self, port: int, rate_bps: int, pause_quanta: int, headroom_bytes: int):
        self.port = port
        self.rate_bps = rate_bps
        self.pause_quanta = pause_quanta
        self.pause_ns = quanta_to_ns(pause_quanta, rate_bps)
        self.headroom_limit = headroom_bytes
        # egress side: when each priority may transmit again
        self.paused_until = [0] * NUM_PRIORITIES
        self.pause_horizon = 0                  # no priority is paused after this time
        self._pause_start: list[int | None] = [None] * NUM_PRIORITIES
        self._paused_ns_closed = [0] * NUM_PRIORITIES
        self.pfc_rx = [0] * NUM_PRIORITIES
        self.pause_rx = 0                       # legacy 802.3x PAUSE frames received
        self.pause_seen = 0                     # bit q: a pause (timer > 0) for q came since the watchdog looked
        self.wd_ignore = 0                      # bit q: the PFC watchdog declared q stormed: do not obey
        # ingress side: bytes of buffered packets that arrived here, per priority
        self.shared = [0] * NUM_PRIORITIES
        self.headroom = [0] * NUM_PRIORITIES
        self.xoff = [False] * NUM_PRIORITIES    # we have told the peer to stop
        self.xoff_count = 0                     # how many priorities are in XOFF (refresh due)
        self.refresh_at = [NEVER] * NUM_PRIORITIES
        self.pfc_tx = [0] * NUM_PRIORITIES
        self.xoff_events = [0] * NUM_PRIORITIES
        self.headroom_overflow = [0] * NUM_PRIORITIES
        self.max_headroom = [0] * NUM_PRIORITIES
        self.max_ingress_bytes = [0] * NUM_PRIORITIES

    # ---- egress side: honouring pauses from the peer ----

    def receive(self, frame: MacControlFrame, now_ns: int) -> None:
        """Apply a received PFC/PAUSE frame: stop each enabled priority for quanta × 512 bit times."""
        if frame.is_pfc:
            for priority in range(NUM_PRIORITIES):
                if frame.class_enable >> priority & 1:
                    self.pfc_rx[priority] += 1
                    self._obey(priority, frame.quanta[priority], now_ns)
        else:
            self.pause_rx += 1
            for priority in range(NUM_PRIORITIES):
                self._obey(priority, frame.quanta[0], now_ns)

    def _obey(self, priority: int, quanta: int, now_ns: int) -> None:
        if quanta:
            self.pause_seen |= 1 << priority
        if not self.wd_ignore >> priority & 1:
            self._pause(priority, quanta, now_ns)

    def ignore_pauses(self, priority: int, ignore: bool, now_ns: int) -> None:
        """The watchdog's switch: while ignored, pauses for ``priority`` are counted, not obeyed
        (the one in force ends now)."""
        if ignore:
            self._pause(priority, 0, now_ns)
            self.wd_ignore |= 1 << priority
        else:
            self.wd_ignore &= ~(1 << priority)

    def _pause(self, priority: int, quanta: int, now_ns: int) -> None:
        start = self._pause_start[priority]
        if start is not None:  # close the running interval where it ended (or now, if cut short)
            self._paused_ns_closed[priority] += min(self.paused_until[priority], now_ns) - start
        if quanta:
            self._pause_start[priority] = now_ns
            self.paused_until[priority] = now_ns + quanta_to_ns(quanta, self.rate_bps)
            if self.paused_until[priority] > self.pause_horizon:
                self.pause_horizon = self.paused_until[priority]
        else:
            self._pause_start[priority] = None
            self.paused_until[priority] = now_ns

    def paused_ns(self, priority: int, now_ns: int) -> int:
        """Total time ``priority`` has been paused on this port up to ``now_ns``."""
        total = self._paused_ns_closed[priority]
        start = self._pause_start[priority]
        if start is not None:
            total += max(0, min(self.paused_until[priority], now_ns) - start)
        return total

    # ---- ingress side: deciding when to pause the peer ----

    def charge(self, priority: int, length: int, xoff_bytes: int) -> int:
        """Account ``length`` bytes arriving on this port at ``priority``; returns the bytes taken
        from the shared buffer (the rest go to headroom), or -1 when the headroom cannot hold
        them: the packet is dropped, as a real switch drops it (a lossless drop that shows a
        misconfiguration). ``xoff_bytes``: the current XOFF threshold."""
        if not self.headroom[priority] and self.shared[priority] + length <= xoff_bytes:
            self.shared[priority] += length
            shared_taken = length
        else:
            if self.headroom[priority] + length > self.headroom_limit:
                self.headroom_overflow[priority] += 1
                if self.headroom_overflow[priority] == 1:
                    log.error("port %d priority %d: PFC headroom overflow (%d + %d > %d bytes), packet dropped: "
                              "configuration error, raise pfc.headroom or pfc.response_time in switch.yaml, or "
                              "lower the rates if the switch is CPU-bound (its socket backlog is in flight too); "
                              "logged once", self.port, priority, self.headroom[priority], length,
                              self.headroom_limit)
                return -1
            self.headroom[priority] += length
            shared_taken = 0
            if self.headroom[priority] > self.max_headroom[priority]:
                self.max_headroom[priority] = self.headroom[priority]
        used = self.shared[priority] + self.headroom[priority]
        if used > self.max_ingress_bytes[priority]:
            self.max_ingress_bytes[priority] = used
        return shared_taken

    def release(self, priority: int, length: int) -> int:
        """Account ``length`` bytes leaving the buffer; headroom drains first. Returns shared bytes freed."""
        from_headroom = min(self.headroom[priority], length)
        self.headroom[priority] -= from_headroom
        from_shared = length - from_headroom
        self.shared[priority] -= from_shared
        return from_shared

    def needs_xoff(self, priority: int) -> bool:
        """Above XOFF (the shared share is exhausted, headroom in use) and the peer not yet paused."""
        return not self.xoff[priority] and self.headroom[priority] > 0

    def needs_xon(self, priority: int, xon_bytes: int) -> bool:
        """Paused, headroom drained and shared use back at or below XON."""
        return self.xoff[priority] and not self.headroom[priority] and self.shared[priority] <= xon_bytes

    def pause_frame_timers(self, priority: int, pause: bool, now_ns: int) -> dict[int, int]:
        """Record an XOFF (``pause``) or XON sent for ``priority``; returns the frame's timers."""
        self.pfc_tx[priority] += 1
        if pause:
            if not self.xoff[priority]:
                self.xoff_events[priority] += 1
                self.xoff_count += 1
            self.xoff[priority] = True
            # refresh at half the pause time, so the peer never resumes while we are congested
            self.refresh_at[priority] = now_ns + max(1, self.pause_ns // 2)
            return {priority: self.pause_quanta}
        if self.xoff[priority]:
            self.xoff_count -= 1
        self.xoff[priority] = False
        self.refresh_at[priority] = NEVER
        return {priority: 0}

    def stats(self, now_ns: int) -> dict:
        per_priority = {}
        for p in range(NUM_PRIORITIES):
            per_priority[p] = {
                "pfc_tx": self.pfc_tx[p], "pfc_rx": self.pfc_rx[p], "xoff_events": self.xoff_events[p],
                "paused_ns": self.paused_ns(p, now_ns), "paused": self.paused_until[p] > now_ns,
                "pausing_peer": self.xoff[p], "ingress_shared_bytes": self.shared[p],
                "ingress_headroom_bytes": self.headroom[p], "max_headroom_bytes": self.max_headroom[p],
                "max_ingress_bytes": self.max_ingress_bytes[p], "headroom_overflow": self.headroom_overflow[p],
            }
        return {"pause_rx": self.pause_rx, "priorities": per_priority}
