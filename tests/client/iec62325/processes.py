"""Real processes for the 504 crash tests: our server, or a collecting client,
each in its own Python process so that a test can SIGKILL it at any point."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# argv: pki directory, spool root, port (0: any). Prints the port, serves until killed.
_SERVER = """
import asyncio, sys
from pathlib import Path
from concentrador.pki import DevPki
from concentrador.spool.ledger import Ledger
from tests.client.iec62325.conftest import server_config, start_server

async def main():
    directory, root, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    pki = DevPki(directory, (), directory / "ca.crl")
    ledger = Ledger(root / "ledger.sqlite3")
    server = await start_server(server_config(pki, root), ledger, port)
    print(server.url.rsplit(":", 1)[1].split("/")[0], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

# argv: pki directory, client spool root, url. One collection cycle; prints each
# stored name as it is recorded, then "done".
_COLLECT = """
import asyncio, sys
from pathlib import Path
from concentrador.client.runner import ClientRunner
from concentrador.pki import DevPki
from concentrador.spool.ledger import Ledger
from tests.client.iec62325.conftest import iec_client_config

directory, root, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
pki = DevPki(directory, (), directory / "ca.crl")
config = iec_client_config(pki, root, url)
with Ledger(root / "ledger.sqlite3") as ledger:
    runner = ClientRunner(
        config, ledger, collector_options={"on_stored": lambda n: print("stored", n, flush=True)}
    )
    asyncio.run(runner.collect("0086"))
print("done", flush=True)
"""


@dataclass
class Child:
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    async def line(self, timeout: float = 30) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        return raw.decode().strip()

    async def kill(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        return await self.process.wait()

    async def wait(self, timeout: float = 60) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)


async def spawn(script: str, *args: str, log: Path) -> Child:
    """Run ``script``; its stderr is appended to ``log`` (read it when a test fails)."""
    with open(log, "ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            *args,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
    return Child(process)


async def spawn_server(pki_dir: Path, root: Path, port: int = 0) -> tuple[Child, int]:
    """Our 504 server in a child process; returns it and its port."""
    root.mkdir(parents=True, exist_ok=True)
    child = await spawn(_SERVER, str(pki_dir), str(root), str(port), log=root / "server.log")
    text = await child.line()
    return child, int(json.loads(text))


async def spawn_collect(pki_dir: Path, root: Path, url: str) -> Child:
    root.mkdir(parents=True, exist_ok=True)
    return await spawn(_COLLECT, str(pki_dir), str(root), url, log=root / "collect.log")
