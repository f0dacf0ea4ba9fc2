"""``kc``: one console script, subcommands dispatched by module name.

Each subcommand runs as ``python -m <module>`` (on POSIX the ``kc`` process becomes it with
``exec``), so ``core`` never imports ``tui`` or ``engine32`` (the import contracts in
``pyproject.toml``), and each part keeps its own ``--help``.
"""

import os
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

#: subcommand → (module run with ``python -m``, one-line description)
SUBCOMMANDS: Dict[str, Tuple[str, str]] = {
    "demo": (
        "core.demo",
        "start Redis, the sim engine, the writer and a database, and open the console",
    ),
    "tui": ("tui", "open the trading console on a running engine"),
    "engine": ("engine32", "run the headless engine (sim, kiwoom or kiwoom_rest)"),
    "writer": ("core.writer", "persist the event stream into PostgreSQL/TimescaleDB"),
    "send": ("core.send", "send one command to the engine and print its reply"),
    "status": ("core.status", "show the engine's, the writer's and Redis's health"),
    "report": ("core.report", "the trading journal: fills, fees, tax and realised P&L"),
    "gateway": ("core.gateway", "serve the live feed over WebSocket to browsers and programs"),
}


def usage() -> str:
    lines = ["usage: kc <command> [options]", "", "commands:"]
    for name, (_, text) in SUBCOMMANDS.items():
        lines.append("  {:<8} {}".format(name, text))
    lines += ["", "Run 'kc <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print("kc: unknown command {!r}\n\n{}".format(name, usage()), file=sys.stderr)
        return 2
    argv_child = [sys.executable, "-m", SUBCOMMANDS[name][0], *rest]
    if os.name == "posix":
        # Become the subcommand: signals, exit status and the terminal are its own, with no
        # middle process to forward Ctrl-C (and no second Ctrl-C landing in its clean-up).
        os.execv(sys.executable, argv_child)
    try:  # pragma: no cover - Windows has no exec that keeps the console
        return subprocess.call(argv_child)
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":
    sys.exit(main())
