"""The experimenter's dashboard: the real server on 127.0.0.1, real clients, real headless Chromium.

What a researcher relies on: after logging in with the admin token, the page shows the
room, the people in it and its step counter moving, live; without the token (wrong,
missing, or a forged cookie) neither the page, the JSON nor the live WebSocket gives
away anything; and the snapshot behind the page counts statuses, the funnel, the lobby
and the recent events right.
"""

import asyncio
import json
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.datastructures import Headers

from igym import wire
from igym.loader import load_experiment
from igym.server.dashboard.auth import COOKIE, AdminSessions
from igym.server.dashboard.snapshot import merge
from tests.serving import ROOT, RawClient, load, start, stop
from tests.web.playwright_chromium import chromium

NET_STUDY = ROOT / "tests" / "experiments" / "net_study.py"
TOKEN = "secret"  # tests.serving.start's admin token


def _browser_binary() -> str:
    pytest.importorskip("playwright.async_api", reason="pip install -e '.[test]' (playwright)")
    from tests.browser.test_web_harness import _chromium
    return _chromium()  # the system's Chromium (tests/install_services.sh installs it)


async def _autopilot(url, pid):
    """A real desktop client in its own process: plays its seat with random keys."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "igym.play", "--connect", url, "--headless", "--autopilot", "--participant", pid,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def _end(processes):
    for process in processes:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _http(port, path, headers=None):
    """GET over plain HTTP: (status, headers, body); a 4xx is an answer, not an error."""
    def fetch():
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()
    return await asyncio.to_thread(fetch)


async def _login(port):
    status, headers, _ = await _http(port, "/login", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    return headers["Set-Cookie"].split(";")[0]  # "igym_admin=<session id>"


async def _live_refusal(port, headers):
    """Open the live feed with ``headers``: (close code, messages received before the close)."""
    received = []
    async with connect(f"ws://127.0.0.1:{port}/dashboard/live", additional_headers=headers) as ws:
        try:
            while True:
                received.append(await asyncio.wait_for(ws.recv(), 10))
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, received


# --- in the browser -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.web
def test_the_dashboard_shows_the_room_its_players_and_a_moving_step_counter(tmp_path, monkeypatch):
    binary = _browser_binary()
    experiment = load(monkeypatch, steps=1800, lobby_s=60)  # a 60-second game: long enough to watch

    async def main():
        server, task, url, port = await start(experiment, tmp_path / "dash.sqlite")
        players = []
        try:
            async with chromium(binary) as browser:
                context = await browser.new_context(viewport={"width": 1366, "height": 768})
                page = await context.new_page()
                requested, errors = [], []
                page.on("request", lambda request: requested.append(request.url))
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await page.goto(f"http://127.0.0.1:{port}/")
                await page.fill("#token", TOKEN)
                await page.click("#login button[type=submit]")
                await page.wait_for_selector("#live.on", timeout=30_000)
                players = [await _autopilot(url, pid) for pid in ("dash-alice", "dash-bob")]
                await page.wait_for_function(
                    """() => {
                         const room = document.querySelector('tr.room');
                         if (!room) return false;
                         const members = [...room.querySelectorAll('.member .pid')].map(e => e.textContent);
                         return room.querySelector('.room-game').textContent === 'net'
                             && members.includes('dash-alice') && members.includes('dash-bob');
                       }""", timeout=60_000)
                first = int(await page.text_content("tr.room .room-step"))
                await page.wait_for_function(
                    f"() => Number(document.querySelector('tr.room .room-step').textContent) > {first}",
                    timeout=30_000)
                second = int(await page.text_content("tr.room .room-step"))
                people = await page.eval_on_selector_all("#people tr.participant",
                                                         "rows => rows.map(r => r.dataset.participant)")
                where = await page.text_content("#people tr[data-participant='dash-alice']")
                return (first, second, people, where, page.url, await page.evaluate("document.cookie"),
                        await context.cookies(), requested, errors)
        finally:
            await _end(players)
            await stop(server, task)

    first, second, people, where, url, script_cookies, cookies, requested, errors = asyncio.run(main())
    assert errors == []  # no script error, no blocked resource, no Content-Security-Policy violation
    assert second > first >= 0  # the step counter moved while the page stayed open (no reload)
    assert sorted(people) == ["dash-alice", "dash-bob"] and "room #" in where
    assert url.endswith("/dashboard") and TOKEN not in url
    assert not any(TOKEN in address for address in requested)  # never in any URL the page asked for
    assert "igym_admin" not in script_cookies  # HttpOnly: no script can read the session
    (session,) = [c for c in cookies if c["name"] == "igym_admin"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["value"] != TOKEN


@pytest.mark.slow
@pytest.mark.web
def test_a_wrong_or_missing_token_shows_the_login_form_and_no_data(tmp_path):
    binary = _browser_binary()

    async def main():
        server, task, url, port = await start(load_experiment(NET_STUDY), tmp_path / "closed.sqlite")
        try:
            visitor = await RawClient(url, "hidden-visitor-7").open()
            await visitor.wait_for("page")  # a participant the dashboard knows about
            async with chromium(binary) as browser:
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{port}/dashboard")
                shown = {"missing": await page.is_visible("#login")}
                await page.click("#login button[type=submit]")
                await page.wait_for_function("() => document.querySelector('#message').textContent.length > 0")
                messages = {"empty": await page.text_content("#message")}
                await page.fill("#token", "not-the-token")
                await page.click("#login button[type=submit]")
                await page.wait_for_function("() => /Wrong/.test(document.querySelector('#message').textContent)")
                messages["wrong"] = await page.text_content("#message")
                await page.goto(f"http://127.0.0.1:{port}/")
                shown["after a wrong token"] = await page.is_visible("#login")
                html = await page.content()
                # The page's own script cannot open the live feed without the cookie either.
                live = await page.evaluate(f"""() => new Promise(resolve => {{
                    const ws = new WebSocket('ws://127.0.0.1:{port}/dashboard/live'); const got = [];
                    ws.onmessage = e => got.push(e.data);
                    ws.onclose = e => resolve({{code: e.code, got}});
                }})""")
            return shown, messages, html, live, await _raw_http_checks(port, url)
        finally:
            await stop(server, task)

    shown, messages, html, live, raw = asyncio.run(main())
    assert shown == {"missing": True, "after a wrong token": True}
    assert messages == {"empty": "Type the admin token.", "wrong": "Wrong token."}
    assert "hidden-visitor-7" not in html and 'id="people"' not in html
    assert live == {"code": 1008, "got": []}
    assert raw["dashboard without cookie"] == (200, False, True)  # the login form, no data
    assert raw["snapshot without cookie"][0] == 401 and "hidden-visitor-7" not in raw["snapshot without cookie"][1]
    assert raw["snapshot with the token as cookie"][0] == 401
    assert raw["login with a wrong token"] == (401, None)
    assert raw["login with non-ASCII bytes"].startswith("HTTP/1.1 401")
    assert raw["cookie behind a TLS proxy"].endswith("; Secure") and TOKEN not in raw["cookie behind a TLS proxy"]
    assert raw["live without cookie"] == (1008, [])
    assert raw["live from another site's page"] == (1008, [])
    # The positive controls: with the session the same requests do show the participant …
    assert raw["snapshot with the session"][0] == 200 and "hidden-visitor-7" in raw["snapshot with the session"][1]
    assert raw["live with the session"] == "full"
    # … and after logging out they do not; /status?token= works as before.
    assert raw["snapshot after logout"] == 401
    assert raw["status with the token"] == 200


async def _raw_http_checks(port, url):
    """The same doors without a browser: plain HTTP and a plain WebSocket client."""
    out = {}
    status, _, body = await _http(port, "/dashboard")
    out["dashboard without cookie"] = (status, "hidden-visitor-7" in body, 'id="login"' in body)
    status, _, body = await _http(port, "/dashboard/snapshot")
    out["snapshot without cookie"] = (status, body)
    status, _, _ = await _http(port, "/dashboard/snapshot", {"Cookie": f"igym_admin={TOKEN}"})
    out["snapshot with the token as cookie"] = (status,)
    status, headers, _ = await _http(port, "/login", {"Authorization": "Bearer wrong"})
    out["login with a wrong token"] = (status, headers.get("Set-Cookie"))
    _, headers, _ = await _http(port, "/login", {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-Proto": "https"})
    out["cookie behind a TLS proxy"] = headers["Set-Cookie"]

    def non_ascii():  # header bytes no browser would send: answered, not crashed on
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s\xc3\xa9cr\xe9t\xff\r\n\r\n")
            return raw.recv(4096).decode("latin-1")
    out["login with non-ASCII bytes"] = await asyncio.to_thread(non_ascii)
    out["live without cookie"] = await _live_refusal(port, {})
    cookie = await _login(port)
    out["live from another site's page"] = await _live_refusal(port, {"Cookie": cookie,
                                                                      "Origin": "http://evil.example"})
    status, _, body = await _http(port, "/dashboard/snapshot", {"Cookie": cookie})
    out["snapshot with the session"] = (status, body)
    async with connect(f"ws://127.0.0.1:{port}/dashboard/live", additional_headers={"Cookie": cookie}) as ws:
        out["live with the session"] = json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
    await _http(port, "/logout", {"Cookie": cookie})
    out["snapshot after logout"] = (await _http(port, "/dashboard/snapshot", {"Cookie": cookie}))[0]
    out["status with the token"] = (await _http(port, f"/status?token={TOKEN}"))[0]
    return out


# --- the snapshot and the live feed, without a browser -------------------------------------------


def test_sessions_expire_end_at_logout_and_only_the_exact_token_opens_one():
    now = [1000.0]
    sessions = AdminSessions("tok-123", lifetime_s=60, clock=lambda: now[0])
    assert sessions.token_ok("tok-123")
    for wrong in ("tok-12", "tok-1234", "TOK-123", "", None, "t\u00f6k-123", "\u2603"):
        assert not sessions.token_ok(wrong), wrong
    assert AdminSessions("s\u00e9cret").token_ok("s\u00e9cret".encode().decode("latin-1"))  # UTF-8 bytes on the wire
    first = sessions.login()
    cookie = Headers({"Cookie": f"theme=dark; {COOKIE}={first}; other=1"})
    assert sessions.session(cookie) == first and first != "tok-123" and len(first) >= 40
    assert sessions.session(Headers({"Cookie": f"{COOKIE}=tok-123"})) is None  # the token is not a session
    assert sessions.session(Headers({"Cookie": "garbage;;=;igym_admin"})) is None
    now[0] += 61
    assert sessions.session(cookie) is None  # expired
    second = sessions.login()
    assert sessions.session(Headers({"Cookie": f"{COOKIE}={second}"})) == second
    sessions.logout(Headers({"Cookie": f"{COOKIE}={second}"}))
    assert sessions.session(Headers({"Cookie": f"{COOKIE}={second}"})) is None and len(sessions) == 0


async def _answer(client, count, outcome, answers=None):
    page = await client.wait_for("page", count=count)
    message = {"t": "page", "v": page["v"], "o": outcome}
    if answers is not None:
        message["a"] = answers
    await client.connection.send(wire.pack(message))


async def _until(condition, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        await asyncio.sleep(0.05)


def test_the_snapshot_counts_statuses_the_funnel_the_lobby_and_recent_events(tmp_path):
    async def main():
        server, task, url, port = await start(load_experiment(NET_STUDY), tmp_path / "snap.sqlite")
        try:
            keen = await RawClient(url, "keen").open()  # consent, intro, survey, the game's instructions → lobby
            await _answer(keen, 1, "agreed")
            await _answer(keen, 2, "continued")
            await _answer(keen, 3, "continued", {"ready": 4, "hand": "left"})
            await _answer(keen, 4, "continued")
            await keen.wait_for("lobby")
            shy = await RawClient(url, "shy").open()  # declines consent
            await _answer(shy, 1, "declined")
            await shy.wait_for("end")
            late = await RawClient(url, "late").open()  # still reading the consent form
            await late.wait_for("page")
            rude = await RawClient(url, "rude").open()  # breaks the protocol on its first page
            await rude.wait_for("page")
            await rude.connection.send(wire.pack({"t": "page", "v": "not-this-page", "o": "agreed"}))
            await asyncio.wait_for(rude.reader, 10)
            await _until(lambda: "shy" not in server.participants  # finished and gone: no longer held in memory
                         and not server.participants["rude"].present, "shy's end and rude's close")
            await server.dashboard.refresh()  # the whole study's counts, from the data
            first = server.dashboard.snapshot()
            await keen.abort()  # keen's laptop closes while waiting
            await _until(lambda: not server.dashboard.snapshot()["lobbies"][0]["waiting"][0]["present"], "keen away")
            second = server.dashboard.snapshot()
            return first, second
        finally:
            await stop(server, task)

    first, second = asyncio.run(main())
    assert json.loads(json.dumps(first)) == first  # plain JSON, as it is sent
    assert first["statuses"] == {"started": 3, "completed": 0, "declined": 1, "aborted": 0, "failed": 0}
    funnel = {row["scene"]: (row["reached"], row["now"]) for row in first["funnel"]}
    assert funnel == {"consent": (4, 2), "intro": (1, 0), "before": (1, 0), "match": (1, 1), "end": (0, 0)}
    people = first["participants"]
    assert {pid: (p["where"], p["scene"], p["status"]) for pid, p in people.items()} == {
        "keen": ("lobby", "match", "started"), "shy": ("done", "consent", "declined"),
        "late": ("page", "consent", "started"), "rude": ("page", "consent", "started")}
    assert people["late"]["connected"] and not people["rude"]["connected"]
    assert first["counts"] == {"known": 4, "held": 3, "connected": 2, "uploading": 0, "waiting": 1, "rooms": 0}
    (lobby,) = first["lobbies"]
    assert lobby["game"] == "match" and [w["participant"] for w in lobby["waiting"]] == ["keen"]
    assert lobby["waiting"][0]["present"] and lobby["waiting"][0]["since"] <= first["time"]
    kinds = [(e["kind"], e["participant"]) for e in first["events"]]
    for expected in [("joined", "keen"), ("connect", "keen"), ("joined", "shy"), ("declined", "shy"),
                     ("joined", "late"), ("rejected", "rude"), ("disconnect", "rude")]:
        assert expected in kinds, (expected, kinds)
    rejected = next(e for e in first["events"] if e["kind"] == "rejected")
    assert "not the one shown" in rejected["text"]
    assert [e["id"] for e in first["events"]] == sorted(e["id"] for e in first["events"])
    assert first["storage"]["alive"] and first["storage"]["records_written"] > 0
    assert first["traffic"]["rejected"] == 1
    # keen's connection dropped while waiting: still in line (grace window), shown as away
    assert second["participants"]["keen"]["connected"] is False
    assert second["participants"]["keen"]["away_since"] is not None
    assert ("disconnect", "keen") in [(e["kind"], e["participant"]) for e in second["events"]]

    # Two workers' snapshots make one study's, in the same shape.
    # Each worker with its own data file: the counts add up.
    other = json.loads(json.dumps(first))
    other["worker"] = {"id": "w2", "started": first["worker"]["started"] + 5}
    other["storage"]["data_path"] = "/elsewhere/w2.sqlite"
    other["participants"] = {f"w2-{pid}": row for pid, row in other["participants"].items()}
    both = merge([first, other])
    assert set(both) == set(first)
    assert both["statuses"] == {"started": 6, "completed": 0, "declined": 2, "aborted": 0, "failed": 0}
    assert both["counts"]["known"] == 8 and len(both["participants"]) == 8
    assert [row["reached"] for row in both["funnel"]] == [8, 2, 2, 2, 0]
    assert len(both["lobbies"]) == 1 and len(both["lobbies"][0]["waiting"]) == 2
    assert len(both["events"]) == min(50, 2 * len(first["events"]))
    assert len({e["id"] for e in both["events"]}) == len(both["events"])  # ids stay unique across workers
    # Workers sharing one database count the study from it once, not once per worker.
    other["storage"]["data_path"] = first["storage"]["data_path"]
    shared = merge([first, other])
    assert shared["statuses"] == first["statuses"] and shared["codes_issued"] == first["codes_issued"]
    assert [row["reached"] for row in shared["funnel"]] == [row["reached"] for row in first["funnel"]]


def test_the_live_feed_sends_the_study_once_then_only_what_changed(tmp_path, monkeypatch):
    """A viewer that applies the deltas has exactly the snapshot the server last sent."""
    experiment = load(monkeypatch, steps=600)

    async def main():
        server, task, url, port = await start(experiment, tmp_path / "live.sqlite")
        try:
            cookie = await _login(port)
            async with connect(f"ws://127.0.0.1:{port}/dashboard/live", additional_headers={"Cookie": cookie}) as ws:
                full = json.loads(await asyncio.wait_for(ws.recv(), 10))
                state = full["snapshot"]
                a, b = await RawClient(url, "left").open(), await RawClient(url, "right").open()
                sizes, steps, matched = [], [], 0
                for _ in range(8):
                    data = await asyncio.wait_for(ws.recv(), 10)
                    sizes.append(len(data))
                    delta = json.loads(data)
                    assert delta["type"] == "delta" and delta["point"]["t"] > 0
                    state.update(delta["set"])
                    for pid in delta["participants"]["del"]:
                        del state["participants"][pid]
                    state["participants"].update(delta["participants"]["set"])
                    state["events"] = (state["events"] + delta["events"])[-50:]
                    if server.dashboard.feed.current["time"] == state["time"]:  # no newer one sent meanwhile
                        assert state == json.loads(json.dumps(server.dashboard.feed.current))
                        matched += 1
                    steps.extend(room["step"] for room in state["rooms"])
                await a.abort()
                await b.abort()
            return full, sizes, steps, matched
        finally:
            await stop(server, task)

    full, sizes, steps, matched = asyncio.run(main())
    assert full["type"] == "full" and set(full["history"]) >= {"t", "p50_ms", "p99_ms", "records_per_s"}
    assert matched >= 4
    assert steps and steps == sorted(steps) and steps[-1] > steps[0]  # the room's steps, second by second
    assert max(sizes[2:]) < 4096, sizes  # two players: a few hundred bytes a second, not whole snapshots
