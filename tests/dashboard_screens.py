"""The README's dashboard screenshots, taken during a real run.

    python -m tests.dashboard_screens [--out docs]

A server for ``tests/experiments/dashboard_study.py`` on 127.0.0.1 and real clients:
autopilot desktop clients (``python -m igym.play --connect … --headless --autopilot``)
arriving in pairs, one more waiting alone in the lobby, one who declines consent, one who
is still reading the consent form and one whose client is killed mid-game. Headless
Chromium logs in and saves ``dashboard.png`` (light) and ``dashboard-dark.png`` (dark) at
1366 px wide.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from igym import wire
from igym.loader import load_experiment
from igym.server.app import IgymServer, serve_forever
from igym.sqlite_sink import SqliteSink
from tests.serving import ROOT, RawClient
from tests.web.playwright_chromium import chromium, chromium_binary

STUDY = ROOT / "tests" / "experiments" / "dashboard_study.py"


async def autopilot(url: str, pid: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "igym.play", "--connect", url, "--headless", "--autopilot", "--participant", pid,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not get there in time")
        await asyncio.sleep(0.1)


async def scenario(url: str, people: dict, clients: list) -> None:
    """People arrive in pairs, one declines, one reads, one waits alone, one's client dies mid-game."""
    clients += [await autopilot(url, pid) for pid in ("p-0413", "p-0418")]
    await asyncio.sleep(6)
    clients += [await autopilot(url, pid) for pid in ("p-0422", "p-0427")]
    await asyncio.sleep(5)
    clients += [await autopilot(url, pid) for pid in ("p-0431", "p-0436")]
    declines = await RawClient(url, "p-0440").open()
    consent = await declines.wait_for("page")
    await declines.connection.send(wire.pack({"t": "page", "v": consent["v"], "o": "declined"}))
    await asyncio.sleep(3)
    clients.append(await autopilot(url, "p-0445"))  # alone in the lobby
    reader = await RawClient(url, "p-0451").open()  # still reading the consent form
    await reader.wait_for("page")
    await until(lambda: all(people[p].finished for p in ("p-0413", "p-0418")))
    await until(lambda: people.get("p-0427") is not None and people["p-0427"].room is not None)
    clients[3].kill()  # p-0427's computer goes away mid-game: the room pauses, the partner waits
    await until(lambda: not people["p-0427"].present)
    await asyncio.sleep(1)


async def main(out: Path) -> None:
    binary = chromium_binary()
    if binary is None:
        raise SystemExit("Chromium is needed: apt-get install chromium")
    data = Path(tempfile.mkdtemp(prefix="igym-dash-")) / "slime_pairs.sqlite"
    server = IgymServer(load_experiment(STUDY), SqliteSink(data), "screens")
    ready = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_forever(server, "127.0.0.1", 0, ready))
    port = (await ready).sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}"
    people = server.participants
    clients: list[asyncio.subprocess.Process] = []
    try:
        async with chromium(binary) as browser:
            pages = {}  # both themes open from the start, so they show the same moment
            for scheme in ("light", "dark"):
                context = await browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme=scheme)
                page = pages[scheme] = await context.new_page()
                await page.goto(f"http://127.0.0.1:{port}/")
                await page.fill("#token", "screens")
                await page.click("#login button[type=submit]")
                await page.wait_for_selector("#live.on", timeout=30_000)
            await scenario(url, people, clients)
            await asyncio.sleep(2.5)  # a few live updates since
            for scheme, name in (("light", "dashboard.png"), ("dark", "dashboard-dark.png")):
                await pages[scheme].screenshot(path=str(out / name), full_page=True)
                print(f"wrote {out / name}")
    finally:
        for client in clients:
            if client.returncode is None:
                client.kill()
            await client.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    asyncio.run(main(args.out))
