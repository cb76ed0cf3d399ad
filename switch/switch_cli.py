"""``fabriclab switch-cli``: simple_switch_CLI's syntax over P4Runtime, plus TM views.

    fabriclab switch-cli [--grpc-addr 127.0.0.1:9559] [--device-id 0] [--api-addr ...] [COMMAND ...]

With a COMMAND it runs that one command; otherwise it reads commands from standard input
(one per line, like ``simple_switch_CLI < commands.txt``) or, on a terminal, prompts.
Names may be shortened to a unique suffix (``ipv4_lpm`` for ``MyIngress.ipv4_lpm``).

Where we differ from simple_switch_CLI, because P4Runtime has no entry handles:
``table_delete``/``table_modify`` name the entry by its match fields (and priority), and the
priority is P4Runtime's (higher wins, not bmv2's lower-wins). Multicast nodes
(``mc_node_create``) live in this CLI session and become replicas of P4Runtime multicast
groups when associated. ``meter_set_rates`` takes rates per microsecond as bmv2 does.
"""
from __future__ import annotations

import argparse
import cmd
import sys
from typing import Any

from fabriclab.errors import UserError

DEFAULT_GRPC_ADDR = "127.0.0.1:9559"
DEFAULT_ELECTION_ID = 1 << 62   # above what controllers use: the CLI may write while one runs


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grpc-addr", default=DEFAULT_GRPC_ADDR,
                        help=f"P4Runtime server (default {DEFAULT_GRPC_ADDR})")
    parser.add_argument("--device-id", type=int, default=0, help="P4Runtime device id (default 0)")
    parser.add_argument("--api-addr", help="switch runtime API (default: the gRPC port + 1000)")
    parser.add_argument("--election-id", type=int, default=DEFAULT_ELECTION_ID,
                        help="election id used for writes (default 2**62)")
    # not dest="command": the top-level parser keeps the subcommand's name there
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND",
                        help="one command, e.g. table_dump ipv4_lpm (none: read stdin or prompt)")


class CliError(Exception):
    """A command that cannot be carried out: printed as one line."""


def _ints(words: list[str], what: str) -> list[int]:
    try:
        return [int(w, 0) for w in words]
    except ValueError:
        raise CliError(f"{what} must be integers, got {' '.join(words)!r}") from None


def _one_int(line: str, what: str) -> int:
    words = line.split()
    if len(words) != 1:
        raise CliError(f"expected one argument: <{what}>")
    return _ints(words, what)[0]


def _match_value(kind: str, text: str) -> Any:
    """A simple_switch_CLI match token for one key; None means "don't care"."""
    if text == "*" and kind != "exact":
        return None
    if kind == "lpm" and "/" not in text:
        raise CliError(f"lpm key needs VALUE/PREFIX_LEN, got {text!r}")
    if kind == "ternary" and "&&&" not in text:
        raise CliError(f"ternary key needs VALUE&&&MASK, got {text!r}")
    if kind == "range" and "->" not in text:
        raise CliError(f"range key needs LOW->HIGH, got {text!r}")
    return text


class SwitchShell(cmd.Cmd):
    prompt = "switch-cli> "
    intro = "fabriclab switch-cli: type help or ? to list commands, EOF or quit to leave."

    def __init__(self, grpc_addr: str, device_id: int, api_addr: str, election_id: int, stdout=None):
        super().__init__(stdout=stdout)
        self.grpc_addr, self.device_id, self.api_addr, self.election_id = grpc_addr, device_id, api_addr, election_id
        self._client = None
        self._api = None
        self.mc_nodes: dict[int, tuple[int, list[int]]] = {}   # node handle -> (rid, ports)
        self.failed = 0
        from rich.console import Console

        # piped output is not cut to 80 columns: scripts and logs read whole rows
        wide = None if self.stdout.isatty() else 200
        self.console = Console(file=self.stdout, highlight=False, soft_wrap=True, width=wide)

    # -- connections, opened on first use --

    @property
    def client(self):
        if self._client is None:
            from fabriclab.p4runtime.client import P4RuntimeClient, P4RuntimeError

            client = P4RuntimeClient(self.grpc_addr, self.device_id, self.election_id, timeout=10.0)
            try:
                client.connect()
            except P4RuntimeError as exc:
                raise CliError(f"cannot use the P4Runtime server at {self.grpc_addr}: {exc}") from None
            self._client = client
        if self._client.names is None:
            self._client.fetch_p4info()
        return self._client

    @property
    def api(self):
        if self._api is None:
            from fabriclab.switch.runtime_api import RuntimeApiClient

            self._api = RuntimeApiClient(self.api_addr)
        return self._api

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._api is not None:
            self._api.close()

    # -- command loop plumbing --

    def execute(self, line: str) -> bool:
        """Run one command; raises UserError (one line) if it fails. True means "quit"."""
        from fabriclab.p4runtime.client import P4RuntimeError
        from fabriclab.switch.runtime_api import RuntimeApiError

        try:
            return bool(super().onecmd(line))
        except (CliError, P4RuntimeError, RuntimeApiError, KeyError, ValueError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise UserError(message) from None

    def onecmd(self, line: str) -> bool:
        try:
            return self.execute(line)
        except UserError as exc:
            self.console.print(f"Error: {exc}", markup=False)
            self.failed += 1
            return False

    def default(self, line: str) -> None:
        raise CliError(f"unknown command {line.split()[0]!r} (type help)")

    def emptyline(self) -> bool:
        return False

    def do_EOF(self, line: str) -> bool:
        """Leave the CLI."""
        return True

    def do_quit(self, line: str) -> bool:
        """Leave the CLI."""
        return True

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False)

    # -- tables --

    def _table(self, name: str):
        return self.client.names.table(name)

    def _parse_entry(self, words: list[str], with_action: bool):
        """``<table> [<action>] <match fields> [=> <params>] [priority]`` -> parts; the priority
        (tables with ternary/range/optional keys only) is the last word."""
        from finsy.proto import p4i

        if "=>" in words:
            at = words.index("=>")
            head, params = words[:at], words[at + 1:]
        else:
            head, params = words, []
        if len(head) < (2 if with_action else 1):
            raise CliError("missing table" + (" or action" if with_action else ""))
        table = self._table(head[0])
        action = self.client.names.action(head[1]) if with_action else None
        fields = head[2:] if with_action else head[1:]
        keys = list(table.match_fields)
        kinds = [p4i.MatchField.MatchType.Name(k.match_type).lower() for k in keys]
        priority = 0
        if any(kind in ("ternary", "range", "optional") for kind in kinds):
            tail = params if with_action else fields
            if len(tail) != (len(action.params) if with_action else len(keys)) + 1:
                raise CliError(f"table {table.preamble.name} has ternary/range/optional keys: "
                               f"end the command with a priority")
            priority = _ints([tail.pop()], "priority")[0]
        if len(fields) != len(keys):
            raise CliError(f"table {table.preamble.name} has {len(keys)} match fields "
                           f"({', '.join(k.name for k in keys)}), got {len(fields)}")
        match = {}
        for key, kind, text in zip(keys, kinds, fields):
            value = _match_value(kind, text)
            if value is not None:
                match[key.name] = value
        action_params = None
        if with_action:
            if len(params) != len(action.params):
                raise CliError(f"action {action.preamble.name} takes {len(action.params)} parameters "
                               f"({', '.join(p.name for p in action.params)}), got {len(params)}")
            action_params = {p.name: v for p, v in zip(action.params, params)}
        return table.preamble.name, action.preamble.name if action else None, match, action_params, priority

    def do_table_add(self, line: str) -> None:
        """table_add <table> <action> <match fields> => <action params> [priority]"""
        table, action, match, params, priority = self._parse_entry(line.split(), with_action=True)
        self.client.insert_table_entry(table, match, action, params, priority)
        self._say(f"Entry added to {table}: {self._describe(match, priority)} => {action}")

    def do_table_modify(self, line: str) -> None:
        """table_modify <table> <action> <match fields> => <action params> [priority]"""
        table, action, match, params, priority = self._parse_entry(line.split(), with_action=True)
        self.client.modify_table_entry(table, match, action, params, priority)
        self._say(f"Entry modified in {table}: {self._describe(match, priority)} => {action}")

    def do_table_delete(self, line: str) -> None:
        """table_delete <table> <match fields> [priority]"""
        table, _, match, _, priority = self._parse_entry(line.split(), with_action=False)
        self.client.delete_table_entry(table, match, priority)
        self._say(f"Entry deleted from {table}: {self._describe(match, priority)}")

    def do_table_indirect_add(self, line: str) -> None:
        """table_indirect_add <table> <match fields> => <member id> [priority]"""
        self._indirect_add(line, "member_id")

    def do_table_indirect_add_with_group(self, line: str) -> None:
        """table_indirect_add_with_group <table> <match fields> => <group id> [priority]"""
        self._indirect_add(line, "group_id")

    def _indirect_add(self, line: str, kind: str) -> None:
        words = line.split()
        if "=>" not in words or len(words) < words.index("=>") + 2:
            raise CliError(f"expected <table> <match fields> => <{kind.replace('_', ' ')}> [priority]")
        at = words.index("=>")
        ref, rest = _ints(words[at + 1:at + 2], kind.replace("_", " "))[0], words[at + 2:]
        table, _, match, _, priority = self._parse_entry(words[:at] + rest, with_action=False)
        self.client.insert_table_entry(table, match, priority=priority, **{kind: ref})
        self._say(f"Entry added to {table}: {self._describe(match, priority)} => {kind.replace('_', ' ')} {ref}")

    @staticmethod
    def _describe(match: dict, priority: int) -> str:
        text = " ".join(f"{k}={v}" for k, v in match.items()) or "(all wildcards)"
        return f"{text} priority {priority}" if priority else text

    def do_table_set_default(self, line: str) -> None:
        """table_set_default <table> <action> <action params>"""
        words = line.split()
        if len(words) < 2:
            raise CliError("usage: table_set_default <table> <action> <action params>")
        table, action = self._table(words[0]), self.client.names.action(words[1])
        if len(words) - 2 != len(action.params):
            raise CliError(f"action {action.preamble.name} takes {len(action.params)} parameters")
        self.client.set_default_action(table.preamble.name, action.preamble.name,
                                       {p.name: v for p, v in zip(action.params, words[2:])})
        self._say(f"Default action of {table.preamble.name} set to {action.preamble.name}")

    def do_table_reset_default(self, line: str) -> None:
        """table_reset_default <table>"""
        table = self._table(line.strip())
        self.client.reset_default_action(table.preamble.name)
        self._say(f"Default action of {table.preamble.name} reset")

    def do_table_clear(self, line: str) -> None:
        """table_clear <table>: delete every entry"""
        table = self._table(line.strip()).preamble.name
        entries = self.client.read_table_entries(table)
        for entry in entries:
            self.client.delete_table_entry(table, entry.match, entry.priority)
        self._say(f"Deleted {len(entries)} entries from {table}")

    def do_table_num_entries(self, line: str) -> None:
        """table_num_entries <table>"""
        self._say(str(len(self.client.read_table_entries(self._table(line.strip()).preamble.name))))

    def do_table_dump(self, line: str) -> None:
        """table_dump <table>: entries and the default action"""
        from rich.table import Table

        info = self._table(line.strip())
        entries = self.client.read_table_entries(info.preamble.name)
        default = self.client.read_default_action(info.preamble.name)
        out = Table(title=f"{info.preamble.name} ({len(entries)} entries)")
        keys = [k.name for k in info.match_fields]
        for column in (*keys, "priority", "action", "packets", "bytes"):
            out.add_column(column)
        for e in entries:
            cells = [_show_match(e.match.get(k)) for k in keys]
            out.add_row(*cells, str(e.priority or ""), _show_action(e), _opt(e.packets), _opt(e.bytes))
        self.console.print(out)
        self._say(f"default: {_show_action(default)}")

    def do_show_tables(self, line: str) -> None:
        """show_tables: tables and their match keys"""
        from finsy.proto import p4i

        for t in self.client.names.p4info.tables:
            keys = ", ".join(f"{k.name}({p4i.MatchField.MatchType.Name(k.match_type).lower()}, {k.bitwidth})"
                             for k in t.match_fields)
            self._say(f"{t.preamble.name:<40} [{keys}]")

    def do_show_actions(self, line: str) -> None:
        """show_actions: actions and their parameters"""
        for a in self.client.names.p4info.actions:
            params = ", ".join(f"{p.name}({p.bitwidth})" for p in a.params)
            self._say(f"{a.preamble.name:<40} [{params}]")

    # -- action profiles --

    def do_act_prof_create_member(self, line: str) -> None:
        """act_prof_create_member <profile> <member id> <action> <action params>"""
        words = line.split()
        if len(words) < 3:
            raise CliError("usage: act_prof_create_member <profile> <member id> <action> <action params>")
        member_id = _ints([words[1]], "member id")[0]
        action = self.client.names.action(words[2])
        if len(words) - 3 != len(action.params):
            raise CliError(f"action {action.preamble.name} takes {len(action.params)} parameters")
        self.client.insert_member(words[0], member_id, action.preamble.name,
                                  {p.name: v for p, v in zip(action.params, words[3:])})
        self._say(f"Member {member_id} created")

    def do_act_prof_delete_member(self, line: str) -> None:
        """act_prof_delete_member <profile> <member id>"""
        words = line.split()
        if len(words) != 2:
            raise CliError("usage: act_prof_delete_member <profile> <member id>")
        self.client.delete_member(words[0], _ints(words[1:], "member id")[0])
        self._say("Member deleted")

    def do_act_prof_create_group(self, line: str) -> None:
        """act_prof_create_group <profile> <group id> [<member id>[:<weight>] ...]"""
        words = line.split()
        if len(words) < 2:
            raise CliError("usage: act_prof_create_group <profile> <group id> [member[:weight] ...]")
        members = [tuple(_ints(w.split(":"), "member:weight")) if ":" in w else _ints([w], "member id")[0]
                   for w in words[2:]]
        self.client.insert_group(words[0], _ints([words[1]], "group id")[0], members)
        self._say(f"Group {words[1]} created")

    def do_act_prof_add_member_to_group(self, line: str) -> None:
        """act_prof_add_member_to_group <profile> <member id> <group id>"""
        words = line.split()
        if len(words) != 3:
            raise CliError("usage: act_prof_add_member_to_group <profile> <member id> <group id>")
        member_id, group_id = _ints(words[1:], "ids")
        members = self.client.read_groups(words[0]).get(group_id)
        if members is None:
            raise CliError(f"no group {group_id}")
        self.client.modify_group(words[0], group_id, [*members, (member_id, 1)])
        self._say(f"Member {member_id} added to group {group_id}")

    def do_act_prof_dump(self, line: str) -> None:
        """act_prof_dump <profile>: members and groups"""
        name = line.strip()
        for member_id, (action, params) in sorted(self.client.read_members(name).items()):
            self._say(f"member {member_id}: {action}({_show_params(params)})")
        for group_id, members in sorted(self.client.read_groups(name).items()):
            self._say(f"group {group_id}: " + ", ".join(f"{m}x{w}" for m, w in members))

    # -- registers, counters, meters --

    def do_register_read(self, line: str) -> None:
        """register_read <register> [index]"""
        words = line.split()
        if not 1 <= len(words) <= 2:
            raise CliError("usage: register_read <register> [index]")
        index = _ints(words[1:], "index")[0] if len(words) == 2 else None
        cells = self.client.read_register(words[0], index)
        if index is not None:
            self._say(f"{words[0]}[{index}]= {cells[index]}")
        else:
            self._say(f"{words[0]}= " + ", ".join(str(v) for _, v in sorted(cells.items())))

    def do_register_write(self, line: str) -> None:
        """register_write <register> <index> <value>"""
        words = line.split()
        if len(words) != 3:
            raise CliError("usage: register_write <register> <index> <value>")
        self.client.write_register(words[0], _ints([words[1]], "index")[0], words[2])

    def do_register_reset(self, line: str) -> None:
        """register_reset <register>: every cell to 0"""
        self.client.write_register(line.strip(), None, 0)

    def do_counter_read(self, line: str) -> None:
        """counter_read <counter> [index]"""
        words = line.split()
        if not 1 <= len(words) <= 2:
            raise CliError("usage: counter_read <counter> [index]")
        index = _ints(words[1:], "index")[0] if len(words) == 2 else None
        for i, (packets, nbytes) in sorted(self.client.read_counter(words[0], index).items()):
            self._say(f"{words[0]}[{i}]= BmCounterValue(packets={packets}, bytes={nbytes})")

    def do_counter_reset(self, line: str) -> None:
        """counter_reset <counter>: every cell to 0"""
        self.client.write_counter(line.strip(), None)

    def do_meter_set_rates(self, line: str) -> None:
        """meter_set_rates <meter> <index> <rate>:<burst> <rate>:<burst> (committed, peak; units/µs)"""
        words = line.split()
        if len(words) != 4:
            raise CliError("usage: meter_set_rates <meter> <index> <cir>:<cburst> <pir>:<pburst>")
        rates = []
        for word in words[2:]:
            try:
                rate, burst = word.split(":")
                rates.append((float(rate), int(burst)))
            except ValueError:
                raise CliError(f"expected RATE:BURST, got {word!r}") from None
        (cir, cburst), (pir, pburst) = rates
        config = (round(cir * 1e6), cburst, round(pir * 1e6), pburst)   # P4Runtime rates are per second
        self.client.set_meter(words[0], _ints([words[1]], "index")[0], config)

    def do_meter_get_rates(self, line: str) -> None:
        """meter_get_rates <meter> <index>"""
        words = line.split()
        if len(words) != 2:
            raise CliError("usage: meter_get_rates <meter> <index>")
        index = _ints(words[1:], "index")[0]
        config = self.client.read_meter(words[0], index)[index]
        if config is None:
            self._say("not configured (every packet GREEN)")
        else:
            cir, cburst, pir, pburst = config
            self._say(f"committed {cir / 1e6:g}/µs burst {cburst}; peak {pir / 1e6:g}/µs burst {pburst}")

    # -- packet replication --

    def do_mirroring_add(self, line: str) -> None:
        """mirroring_add <session id> <egress port>"""
        words = line.split()
        if len(words) != 2:
            raise CliError("usage: mirroring_add <session id> <egress port>")
        session, port = _ints(words, "session and port")
        self.client.insert_clone_session(session, [port])
        self._say(f"Clone session {session} -> port {port}")

    def do_mirroring_delete(self, line: str) -> None:
        """mirroring_delete <session id>"""
        self.client.delete_clone_session(_one_int(line, "session id"))

    def do_mirroring_get(self, line: str) -> None:
        """mirroring_get <session id>"""
        session = _one_int(line, "session id")
        replicas = self.client.read_clone_sessions(session).get(session)
        if replicas is None:
            raise CliError(f"no clone session {session}")
        self._say(f"session {session}: ports {', '.join(str(p) for p, _ in replicas) or 'none'}")

    def do_mc_mgrp_create(self, line: str) -> None:
        """mc_mgrp_create <group id>"""
        group = _one_int(line, "group id")
        self.client.insert_multicast_group(group, [])
        self._say(f"Multicast group {group} created")

    def do_mc_mgrp_destroy(self, line: str) -> None:
        """mc_mgrp_destroy <group id>"""
        self.client.delete_multicast_group(_one_int(line, "group id"))

    def do_mc_node_create(self, line: str) -> None:
        """mc_node_create <rid> <port> [<port> ...]: prints the node handle"""
        words = line.split()
        if len(words) < 2:
            raise CliError("usage: mc_node_create <rid> <port> [<port> ...]")
        rid, *ports = _ints(words, "rid and ports")
        handle = max(self.mc_nodes, default=-1) + 1
        self.mc_nodes[handle] = (rid, ports)
        self._say(f"node was created with handle {handle}")

    def _node(self, word: str) -> tuple[int, list[int]]:
        handle = _ints([word], "node handle")[0]
        if handle not in self.mc_nodes:
            raise CliError(f"no node {handle} in this session (mc_node_create first)")
        return self.mc_nodes[handle]

    def _group_replicas(self, group: int) -> list[tuple[int, int]]:
        replicas = self.client.read_multicast_groups(group).get(group)
        if replicas is None:
            raise CliError(f"no multicast group {group}")
        return replicas

    def do_mc_node_associate(self, line: str) -> None:
        """mc_node_associate <group id> <node handle>"""
        words = line.split()
        if len(words) != 2:
            raise CliError("usage: mc_node_associate <group id> <node handle>")
        group, (rid, ports) = _ints(words[:1], "group id")[0], self._node(words[1])
        replicas = self._group_replicas(group)
        replicas += [(p, rid) for p in ports if (p, rid) not in replicas]
        self.client.modify_multicast_group(group, replicas)
        self._say(f"node {words[1]} associated with group {group}")

    def do_mc_node_dissociate(self, line: str) -> None:
        """mc_node_dissociate <group id> <node handle>"""
        words = line.split()
        if len(words) != 2:
            raise CliError("usage: mc_node_dissociate <group id> <node handle>")
        group, (rid, ports) = _ints(words[:1], "group id")[0], self._node(words[1])
        replicas = [r for r in self._group_replicas(group) if r not in {(p, rid) for p in ports}]
        self.client.modify_multicast_group(group, replicas)

    def do_mc_dump(self, line: str) -> None:
        """mc_dump: multicast groups and their (port, rid) replicas"""
        for group, replicas in sorted(self.client.read_multicast_groups().items()):
            self._say(f"mgrp {group}: " + (", ".join(f"port {p} rid {r}" for p, r in replicas) or "empty"))

    # -- traffic manager views (runtime API) --

    def _ports_filter(self, line: str) -> set[str] | None:
        words = line.split()
        return {str(p) for p in _ints(words, "ports")} if words else None

    def do_ports(self, line: str) -> None:
        """ports: per-port rx/tx counters and line rate"""
        from rich.table import Table

        stats = self.api.call("stats")
        tm_ports = stats["tm"]["ports"]
        out = Table(title="ports")
        for column in ("port", "ifname", "rate", "rx frames", "rx bytes", "tx frames", "tx bytes", "pause rx", "drops"):
            out.add_column(column)
        for number, port in stats["ports"].items():
            tm = tm_ports.get(number, {})
            rate = tm.get("rate_bps")
            out.add_row(number, port["ifname"], f"{rate / 1e9:g}G" if rate else "-", str(port["rx_frames"]),
                        str(port["rx_bytes"]), str(port["tx_frames"]), str(port["tx_bytes"]),
                        str(tm.get("pause_rx", 0)), _show_drops(port["drops"]))
        self.console.print(out)

    def do_queues(self, line: str) -> None:
        """queues [port ...]: per-port, per-priority queue depth, peaks and drops"""
        from rich.table import Table

        wanted = self._ports_filter(line)
        stats = self.api.call("stats")["tm"]
        buf = stats["buffer"]
        out = Table(title=f"queues (shared buffer {buf['shared_used']}/{buf['shared_bytes']} B, "
                          f"peak {buf['max_shared_used']} B, headroom used {buf['headroom_used']} B)")
        for column in ("port", "prio", "qdepth", "qbytes", "max qdepth", "max qbytes", "enq", "deq", "drops"):
            out.add_column(column)
        for number, port in stats["ports"].items():
            if wanted is not None and number not in wanted:
                continue
            for prio, q in port["priorities"].items():
                if not (q["enqueued"] or q["qdepth"] or q["drops"]) and wanted is None:
                    continue   # idle queues of every port would drown the view
                out.add_row(number, prio, str(q["qdepth"]), str(q["qbytes"]), str(q["max_qdepth"]),
                            str(q["max_qbytes"]), str(q["enqueued"]), str(q["dequeued"]), _show_drops(q["drops"]))
        self.console.print(out)

    def do_pfc(self, line: str) -> None:
        """pfc [port ...]: 802.1Qbb state of the lossless priorities"""
        from rich.table import Table

        wanted = self._ports_filter(line)
        stats = self.api.call("stats")["tm"]
        lossless = {str(p) for p in stats["config"]["lossless"]}
        out = Table(title=f"PFC (lossless priorities {', '.join(sorted(lossless)) or 'none'})")
        for column in ("port", "prio", "paused", "pausing peer", "pfc tx", "pfc rx", "xoff events",
                       "paused ns", "ingress B", "headroom B", "max headroom B", "overflow"):
            out.add_column(column)
        for number, port in stats["ports"].items():
            if wanted is not None and number not in wanted:
                continue
            for prio, q in port["priorities"].items():
                if prio not in lossless or "pfc_tx" not in q:
                    continue
                out.add_row(number, prio, _yes(q["paused"]), _yes(q["pausing_peer"]), str(q["pfc_tx"]),
                            str(q["pfc_rx"]), str(q["xoff_events"]), str(q["paused_ns"]),
                            str(q["ingress_shared_bytes"]), str(q["ingress_headroom_bytes"]),
                            str(q["max_headroom_bytes"]), str(q["headroom_overflow"]))
        self.console.print(out)

    def do_pfcwd(self, line: str) -> None:
        """pfcwd [port ...]: PFC watchdog settings and, per watched queue, its state and events"""
        from rich.table import Table

        wanted = self._ports_filter(line)
        stats = self.api.call("stats")["tm"]
        wd = stats["config"].get("pfcwd")
        if wd is None:
            self._say("pfcwd: off (enable it with 'pfcwd: {enabled: true}' in switch.yaml)")
            return
        out = Table(title=f"PFC watchdog: action {wd['action']}, detection {wd['detection_ns'] / 1e6:g} ms, "
                          f"restoration {wd['restoration_ns'] / 1e6:g} ms, poll {wd['poll_ns'] / 1e6:g} ms")
        for column in ("port", "prio", "state", "storms", "restorations", "dropped", "paused", "pfc rx"):
            out.add_column(column)
        for number, port in stats["ports"].items():
            if wanted is not None and number not in wanted:
                continue
            for prio, q in port["priorities"].items():
                if q.get("pfcwd", "off") == "off":
                    continue
                out.add_row(number, prio, q["pfcwd"], str(q["pfcwd_storms"]), str(q["pfcwd_restorations"]),
                            str(q["drops"].get("pfcwd", 0)), _yes(q["paused"]), str(q["pfc_rx"]))
        self.console.print(out)

    def do_tm_config(self, line: str) -> None:
        """tm_config: live thresholds of the traffic manager"""
        config = self.api.call("tm_config")
        for key in ("alpha", "queue_limit", "xoff_bytes", "xon_bytes", "shared_bytes", "lossless"):
            value = config[key]
            self._say(f"{key:<13} {'dynamic' if value is None else value}")

    def do_tm_set(self, line: str) -> None:
        """tm_set key=value ...: alpha, queue_limit, xoff_bytes, xon_bytes (bytes or "dynamic")"""
        changes: dict[str, Any] = {}
        for word in line.split():
            key, sep, value = word.partition("=")
            if not sep:
                raise CliError(f"expected key=value, got {word!r}")
            if value == "dynamic":
                changes[key] = value
            elif key == "alpha":
                changes[key] = float(value)
            else:
                changes[key] = _ints([value], key)[0]
        if not changes:
            raise CliError("usage: tm_set key=value ...")
        self.api.call("set_tm", **changes)
        self.do_tm_config("")


def _opt(value: Any) -> str:
    return "" if value is None else str(value)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _show_drops(drops: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "0"


def _show_match(value: Any) -> str:
    if value is None:
        return "*"
    if isinstance(value, tuple):
        return f"{value[0]:#x}/{value[1]}"
    return f"{value:#x}"


def _show_params(params: dict[str, int]) -> str:
    return ", ".join(f"{k}={v:#x}" for k, v in params.items())


def _show_action(entry) -> str:
    if entry.member_id is not None:
        return f"member {entry.member_id}"
    if entry.group_id is not None:
        return f"group {entry.group_id}"
    return f"{entry.action}({_show_params(entry.params)})"


def run(args: argparse.Namespace) -> int:
    from fabriclab.switch.runtime_api import default_api_addr

    api_addr = args.api_addr or default_api_addr(args.grpc_addr)
    shell = SwitchShell(args.grpc_addr, args.device_id, api_addr, args.election_id)
    try:
        if args.words:
            shell.execute(" ".join(args.words))
            return 0
        if sys.stdin.isatty():
            shell.cmdloop()
            return 0
        shell.use_rawinput = False
        shell.prompt = ""
        for line in sys.stdin:
            if line.strip() and not line.lstrip().startswith("#"):
                shell.onecmd(line.strip())
        return 1 if shell.failed else 0
    finally:
        shell.close()
