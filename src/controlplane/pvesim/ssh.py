"""An SSH server for the simulated cluster that understands ``pct exec``.

It authenticates one configured public key for one user, and runs
``pct exec <vmid> -- <command...>`` against the ``Simulator``: like pve-container's ``pct``,
a CT whose config is not on the node, or that is not running, gets a message on stderr and
exit status 255. Commands are not executed: they are recorded per container (visible in
``/_sim/state``) and answered by a tiny interpreter (``echo``, ``hostname``, ``true``,
``false``, ``exit N``). Failure injection: a command containing ``exit N`` exits N, and the
``ssh_failure_rate`` fault makes a share of commands exit 1.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass

import asyncssh

from .simulator import Simulator

_EXIT = re.compile(r"(?:^|[;&|\s])exit\s+(\d+)")
NOT_SIMULATED = 127


@dataclass(frozen=True)
class Outcome:
    exit_status: int
    stdout: str = ""
    stderr: str = ""


def _commands(script: str) -> list[list[str]]:
    """Split a script into simple commands, honouring quotes (`echo 'a; b'` is one)."""
    commands: list[list[str]] = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        current: list[str] = []
        try:
            for token in lexer:
                if token in (";", "&&", "||", "&", "|"):
                    if current:
                        commands.append(current)
                    current = []
                elif token[0] in "<>":
                    next(lexer, None)  # a redirection and its target are not words
                else:
                    current.append(token)
        except ValueError:
            return [["false"]]  # unbalanced quotes: sh would refuse the script
        if current:
            commands.append(current)
    return commands


def _interpret(script: str, hostname: str) -> Outcome:
    """Just enough shell to make results checkable; anything else succeeds silently."""
    if m := _EXIT.search(script):
        return Outcome(int(m.group(1)) % 256)
    out = []
    for words in _commands(script):
        if words[0] == "echo":
            out.append(" ".join(words[1:]) + "\n")
        elif words[0] == "hostname" or words[:2] == ["cat", "/etc/hostname"]:
            out.append(hostname + "\n")
        elif words[0] == "false":
            return Outcome(1, "".join(out))
    return Outcome(0, "".join(out))


def pct_exec(sim: Simulator, command: str, node: str | None = None) -> Outcome:
    """What ``pct exec`` on ``node`` (any node when None) does with ``command``."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return Outcome(2, stderr=f"sh: 1: Syntax error: {exc}\n")
    if argv[:2] != ["pct", "exec"] or len(argv) < 3:
        name = argv[0] if argv else ""
        return Outcome(
            NOT_SIMULATED, stderr=f"pvesim: only 'pct exec' is simulated, not {name!r}\n"
        )
    try:
        vmid = int(argv[2])
    except ValueError:
        return Outcome(
            255,
            stderr="400 Parameter verification failed.\n"
            f"vmid: type check ('integer') failed - got '{argv[2]}'\n",
        )
    rest = argv[3:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    ct = sim.containers.get(vmid)
    here = node or (ct.node if ct else next(iter(sim.nodes)))
    if ct is None or ct.node != here:
        return Outcome(
            255, stderr=f"Configuration file 'nodes/{here}/lxc/{vmid}.conf' does not exist\n"
        )
    if not ct.running:
        return Outcome(255, stderr=f"container '{vmid}' not running!\n")
    if not rest:
        return Outcome(255, stderr="missing command at /usr/share/perl5/PVE/CLI/pct.pm\n")
    script = rest[2] if rest[:2] == ["sh", "-c"] and len(rest) > 2 else shlex.join(rest)
    if sim.draw(sim.faults.ssh_failure_rate):
        outcome = Outcome(1, stderr="pvesim: injected failure\n")
    else:
        outcome = _interpret(script, ct.hostname)
    ct.commands.append({"command": script, "exit_status": outcome.exit_status, "at": time.time()})
    return outcome


class _Server(asyncssh.SSHServer):
    def __init__(self, username: str, authorized: asyncssh.SSHKey) -> None:
        self._username = username
        self._authorized = authorized

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._username and key.public_data == self._authorized.public_data


class SimSshServer:
    """The running SSH server; ``host_public_key`` is what clients pin."""

    def __init__(self, server: asyncssh.SSHAcceptor, host_key: asyncssh.SSHKey) -> None:
        self._server = server
        sockname = server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        self.host_public_key = host_key.export_public_key("openssh").decode("ascii").strip()

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_ssh_server(
    sim: Simulator,
    *,
    authorized_key: str,
    host: str = "127.0.0.1",
    port: int = 0,
    username: str = "root",
    host_key_pem: str | None = None,
    node: str | None = None,
) -> SimSshServer:
    """Listen for ``pct exec`` over SSH; ``port=0`` picks a free port.

    ``authorized_key`` is the one OpenSSH public key allowed in. ``host_key_pem`` keeps the
    host key stable across runs (a new ed25519 key otherwise). ``node`` makes it behave as
    that node's sshd (only its containers); by default every container is reachable.
    """
    authorized = asyncssh.import_public_key(authorized_key)
    host_key = (
        asyncssh.import_private_key(host_key_pem)
        if host_key_pem
        else asyncssh.generate_private_key("ssh-ed25519")
    )

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        outcome = pct_exec(sim, process.command or "", node)
        if outcome.stdout:
            process.stdout.write(outcome.stdout)
        if outcome.stderr:
            process.stderr.write(outcome.stderr)
        process.exit(outcome.exit_status)

    server = await asyncssh.create_server(
        lambda: _Server(username, authorized),
        host,
        port,
        server_host_keys=[host_key],
        process_factory=handle,
        encoding="utf-8",
    )
    return SimSshServer(server, host_key)
