"""A tiny shell "inside" a simulated container, for ``pct exec`` and ``pct enter``.

Commands are not executed. A handful are answered the way a Debian 12 container would:
``echo``, ``hostname``, ``cat /etc/hostname``, ``cat /etc/os-release``, ``pwd``,
``whoami``, ``stty size`` / ``tput cols|lines`` (the terminal's size, when there is one),
``systemctl show|is-active|start|stop|restart <unit>`` and ``journalctl -u <unit>``, over
the container's systemd units (``Simulator(guest_units=...)``, ``Simulator.add_unit``) and
its journal. ``true``/``false`` and ``exit N`` give exit statuses; anything else succeeds
silently, so bootstrap scripts run. The output formats are systemd 252's (Debian 12).
"""

from __future__ import annotations

import random
import re
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass

from .models import Container, Unit

_EXIT = re.compile(r"(?:^|[;&|\s])exit\s+(\d+)")
_UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target", ".mount", ".path")
# what ``systemctl show`` prints without --property (a subset of systemd's list)
DEFAULT_PROPERTIES = (
    "Id", "Names", "Description", "LoadState", "ActiveState", "SubState", "UnitFileState",
    "MainPID", "ExecMainStartTimestamp", "ActiveEnterTimestamp", "NRestarts", "Result",
)  # fmt: skip
OS_RELEASE = {
    "debian": (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
        'HOME_URL="https://www.debian.org/"\nSUPPORT_URL="https://www.debian.org/support"\n'
        'BUG_REPORT_URL="https://bugs.debian.org/"\n'
    ),
    "ubuntu": (
        'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
        'VERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n'
        "ID_LIKE=debian\n"
    ),
    "alpine": (
        'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n'
        'PRETTY_NAME="Alpine Linux v3.20"\nHOME_URL="https://alpinelinux.org/"\n'
    ),
}


@dataclass(frozen=True)
class Outcome:
    exit_status: int
    stdout: str = ""
    stderr: str = ""
    exited: bool = False  # the script ran ``exit``: an interactive shell ends


def split_commands(script: str) -> list[list[str]]:
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


# -- systemd units ---------------------------------------------------------------------


def _timestamp(when: float | None) -> str:
    if when is None:
        return ""
    return time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def _unit_name(name: str) -> str:
    return name if name.endswith(_UNIT_SUFFIXES) else f"{name}.service"


def add_unit(ct: Container, name: str, description: str | None = None) -> Unit:
    name = _unit_name(name)
    unit = ct.units.get(name)
    if unit is None:
        unit = Unit(name=name, description=description or name.rsplit(".", 1)[0])
        ct.units[name] = unit
    return unit


def _log(ct: Container, ident: str, message: str, when: float | None = None) -> None:
    ct.journal.append((time.time() if when is None else when, ident, message))
    del ct.journal[:-1000]  # journald rotates; keep the tail


def start_unit(ct: Container, unit: Unit, rng: random.Random) -> None:
    _log(ct, "systemd[1]", f"Starting {unit.name} - {unit.description}...")
    unit.active = True
    unit.main_pid = rng.randrange(100, 32768)
    unit.active_since = time.time()
    _log(ct, "systemd[1]", f"Started {unit.name} - {unit.description}.")
    ident = unit.name.rsplit(".", 1)[0]
    _log(ct, f"{ident}[{unit.main_pid}]", f"{ident} started, pid {unit.main_pid}")


def _stop(ct: Container, unit: Unit) -> None:
    if not unit.active:
        return
    _log(ct, "systemd[1]", f"Stopping {unit.name} - {unit.description}...")
    unit.active = False
    unit.main_pid = 0
    _log(ct, "systemd[1]", f"{unit.name}: Deactivated successfully.")
    _log(ct, "systemd[1]", f"Stopped {unit.name} - {unit.description}.")


def boot(ct: Container, names: Iterable[str], rng: random.Random) -> None:
    """The container started: its units (and any of ``names`` it lacks) come up."""
    for name in names:
        add_unit(ct, name)
    for unit in ct.units.values():
        start_unit(ct, unit, rng)


def halt(ct: Container) -> None:
    for unit in ct.units.values():
        _stop(ct, unit)


def _show(ct: Container, args: list[str]) -> Outcome:
    props: list[str] = []
    value_only = False
    names = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--property="):
            props += [p for p in arg.split("=", 1)[1].split(",") if p]
        elif arg in ("-p", "--property") and i + 1 < len(args):
            i += 1
            props += [p for p in args[i].split(",") if p]
        elif arg == "--value":
            value_only = True
        elif not arg.startswith("-"):
            names.append(_unit_name(arg))
        i += 1
    blocks = []
    for name in names or ["init.scope"]:
        unit = ct.units.get(name)
        values = _properties(name, unit)
        lines = [values.get(p, "") if value_only else f"{p}={values.get(p, '')}"
                 for p in (props or DEFAULT_PROPERTIES)]  # fmt: skip
        blocks.append("".join(f"{line}\n" for line in lines))
    return Outcome(0, "\n".join(blocks))


def _properties(name: str, unit: Unit | None) -> dict[str, str]:
    if unit is None:  # systemctl show answers for units it does not know, too
        return {"Id": name, "Names": name, "Description": name, "LoadState": "not-found",
                "ActiveState": "inactive", "SubState": "dead", "UnitFileState": "",
                "MainPID": "0", "ExecMainStartTimestamp": "", "ActiveEnterTimestamp": "",
                "NRestarts": "0", "Result": "success"}  # fmt: skip
    return {
        "Id": unit.name,
        "Names": unit.name,
        "Description": unit.description,
        "LoadState": "loaded",
        "ActiveState": "active" if unit.active else "inactive",
        "SubState": "running" if unit.active else "dead",
        "UnitFileState": "enabled",
        "MainPID": str(unit.main_pid),
        "ExecMainStartTimestamp": _timestamp(unit.active_since if unit.active else None),
        "ActiveEnterTimestamp": _timestamp(unit.active_since if unit.active else None),
        "NRestarts": str(unit.n_restarts),
        "Result": "success",
    }


def _systemctl(ct: Container, args: list[str], rng: random.Random) -> Outcome:
    words = [a for a in args if a not in ("--no-pager", "--quiet", "-q", "--no-block")]
    if not words:
        return Outcome(0)
    verb, rest = words[0], words[1:]
    if verb == "show":
        return _show(ct, rest)
    if verb == "is-active":
        unit = ct.units.get(_unit_name(rest[0])) if rest else None
        state = "active" if unit is not None and unit.active else "inactive"
        return Outcome(0 if state == "active" else 3, f"{state}\n")
    if verb in ("start", "stop", "restart"):
        for name in map(_unit_name, rest):
            unit = ct.units.get(name)
            if unit is None:
                return Outcome(5, stderr=f"Failed to {verb} {name}: Unit {name} not found.\n")
            if verb in ("stop", "restart"):
                _stop(ct, unit)
            if verb in ("start", "restart") and not unit.active:
                start_unit(ct, unit, rng)
        return Outcome(0)
    return Outcome(0)


def _since(value: str) -> float | None:
    if value.startswith("@"):
        return float(value[1:])
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return time.mktime(time.strptime(value, fmt))
        except ValueError:
            continue
    return None


def _journalctl(ct: Container, args: list[str]) -> Outcome:
    units: list[str] = []
    lines: int | None = None
    since: float | None = None
    iso = False
    i = 0
    while i < len(args):
        arg, nxt = args[i], args[i + 1] if i + 1 < len(args) else ""
        if arg in ("-u", "--unit"):
            units.append(_unit_name(nxt))
            i += 1
        elif arg.startswith("--unit="):
            units.append(_unit_name(arg.split("=", 1)[1]))
        elif arg in ("-n", "--lines"):
            lines = int(nxt) if nxt.isdigit() else 10
            i += 1
        elif arg.startswith("--lines="):
            lines = int(arg.split("=", 1)[1])
        elif arg in ("-S", "--since"):
            since = _since(nxt)
            if since is None:
                return Outcome(1, stderr=f"Failed to parse timestamp: {nxt}\n")
            i += 1
        elif arg.startswith("--since="):
            since = _since(arg.split("=", 1)[1])
        elif arg in ("-o", "--output"):
            iso = nxt == "short-iso"
            i += 1
        i += 1
    idents = {u.rsplit(".", 1)[0] for u in units}
    chosen = []
    for when, ident, message in ct.journal:
        if since is not None and when < since:
            continue
        if units:
            by_systemd = ident == "systemd[1]" and any(message.split(" ")[1:2] == [u]
                                                      or message.startswith(f"{u}:")
                                                      for u in units)  # fmt: skip
            if not by_systemd and ident.split("[", 1)[0] not in idents:
                continue
        stamp = (time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(when)) if iso
                 else time.strftime("%b %d %H:%M:%S", time.gmtime(when)))  # fmt: skip
        chosen.append(f"{stamp} {ct.hostname} {ident}: {message}\n")
    if lines is not None:
        chosen = chosen[-lines:] if lines else []
    if not chosen:
        return Outcome(0, "-- No entries --\n")
    return Outcome(0, "".join(chosen))


# -- the interpreter -------------------------------------------------------------------


def run_script(
    ct: Container,
    script: str,
    rng: random.Random,
    *,
    term_size: tuple[int, int] | None = None,
) -> Outcome:
    """Run ``script`` in ``ct``; ``term_size`` is (columns, rows) when there is a terminal."""
    if m := _EXIT.search(script):
        return Outcome(int(m.group(1)) % 256, exited=True)
    out: list[str] = []
    err: list[str] = []
    status = 0
    for words in split_commands(script):
        name, args = words[0], words[1:]
        result: Outcome | None = None
        if name == "echo":
            result = Outcome(0, " ".join(a for a in args if a != "-e") + "\n")
        elif name == "hostname" or words[:2] == ["cat", "/etc/hostname"]:
            result = Outcome(0, ct.hostname + "\n")
        elif words[:2] == ["cat", "/etc/os-release"]:
            ostype = str(ct.config.get("ostype", "debian"))
            result = Outcome(0, OS_RELEASE.get(ostype, OS_RELEASE["debian"]))
        elif name == "pwd":
            result = Outcome(0, "/root\n")
        elif name == "whoami":
            result = Outcome(0, "root\n")
        elif words[:2] == ["stty", "size"]:
            result = (Outcome(0, f"{term_size[1]} {term_size[0]}\n") if term_size
                      else Outcome(1, stderr="stty: 'standard input': Inappropriate ioctl for "
                                   "device\n"))  # fmt: skip
        elif name == "tput" and args[:1] in (["cols"], ["lines"]):
            cols, rows = term_size or (80, 24)
            result = Outcome(0, f"{cols if args[0] == 'cols' else rows}\n")
        elif name == "systemctl":
            result = _systemctl(ct, args, rng)
        elif name == "journalctl":
            result = _journalctl(ct, args)
        elif name == "false":
            return Outcome(1, "".join(out), "".join(err))
        elif name in ("exit", "logout"):
            code = int(args[0]) % 256 if args and args[0].isdigit() else status
            return Outcome(code, "".join(out), "".join(err), exited=True)
        if result is not None:
            out.append(result.stdout)
            err.append(result.stderr)
            status = result.exit_status
        else:
            status = 0
    return Outcome(status, "".join(out), "".join(err))
