"""The deployment files of ``server/deploy/`` ("Running a large online study",
docs/guides/large-study.md), checked as far as they can be without Docker or a public DNS name.
What is tested is the shipped files themselves; only their documented example values — the
ports 8765…, the folders /srv/igym/…, the certificate's path, the listening addresses — are
swapped for this machine's, and every swap is checked to have happened.

- The Caddyfile is valid for Caddy as shipped; nginx.conf passes ``nginx -t``;
  igym-server.service passes ``systemd-analyze verify``; the files agree with each other
  (ports, worker paths, public URLs, the dashboard's worker, the DNS names), and compose.yaml
  wires the same services and options (it is parsed, not run: there is no Docker here).
- The real thing, behind the real Caddy and then the real nginx, each serving HTTPS on
  loopback ports (Caddy's own local CA; nginx with a self-signed certificate) in front of a
  real ``python -m igym.server tests/experiments/cluster_study.py --workers 2 --public-url
  wss://study.example.org:PORT/w{n}``: ``GET /status`` through the proxy lists both workers
  and their public URLs; a hello through ``/ws`` is welcomed; ``/w1`` reaches worker w1 and
  ``/w2`` worker w2 (the cluster's status says who holds whom); a participant held by w1 who
  says hello at ``/w2`` is sent (``move``) to w1's public URL, and welcomed there through the
  proxy; the dashboard's host is worker w1's dashboard: the login page, the token traded for
  a ``Secure`` cookie (the proxy says https), the snapshot and the live feed (whose Origin
  check passes through the proxy); the page and a runtime copy come from their folders;
  plain HTTP redirects to HTTPS.

Needs the Debian packages caddy, nginx, openssl, systemd (systemd-analyze) and redis-server
(tests/install_services.sh installs them); a test whose tool is missing fails naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.redis_service import free_port_run
import yaml
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from igym import wire

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "server" / "deploy"
STUDY = ROOT / "tests" / "experiments" / "cluster_study.py"
SITE, ADMIN = "study.example.org", "admin.study.example.org"
STUDY_PORT = 8765  # the files' study port; worker wN's own port is STUDY_PORT + N
SHIPPED_WORKERS = 4  # the files route /w1 … /w4
TOKEN = "deploy-admin-token"
START_S = 60.0


# --- tools and ports ------------------------------------------------------------------------------

def needs(binary: str, package: str) -> str:
    """The path of ``binary``, or the test fails naming the Debian package that has it."""
    found = shutil.which(binary, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{binary} is not installed: apt-get install {package} (tests/install_services.sh "
                    f"installs what the tests need)", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_S
    while True:
        assert process.poll() is None, f"{what} ended ({process.returncode}):\n{_tail(log)}"
        assert time.monotonic() < deadline, f"{what} does not listen on {port}:\n{_tail(log)}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# --- the shipped files, made local ------------------------------------------------------------------

def swap(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced — which must be there: the test never silently checks less."""
    assert old in text, f"the shipped file no longer holds {old!r}: update the test with it"
    return text.replace(old, new)


def localize(text: str, study_port: int, web: Path, runtime: Path) -> str:
    """The documented ports and folders, made this machine's: 127.0.0.1:8765+k → study_port+k."""
    text, count = re.subn(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{study_port + int(m[1]) - STUDY_PORT}", text)
    assert count > SHIPPED_WORKERS
    return swap(swap(text, "/srv/igym/web", str(web)), "/srv/igym/runtime", str(runtime))


def caddy_config(folder: Path, study_port: int, http_port: int, https_port: int, web: Path, runtime: Path) -> Path:
    """The shipped Caddyfile behind global options for a test: loopback only, its own ports, its
    own local CA instead of Let's Encrypt (the site blocks are the shipped ones)."""
    options = ("{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tdefault_bind 127.0.0.1\n"
               f"\thttp_port {http_port}\n\thttps_port {https_port}\n}}\n\n")
    path = folder / "Caddyfile"
    path.write_text(options + localize((DEPLOY / "Caddyfile").read_text(), study_port, web, runtime))
    return path


def nginx_config(folder: Path, study_port: int, http_port: int, https_port: int, web: Path, runtime: Path) -> Path:
    """The shipped nginx.conf (a site file) inside a main configuration of the test's own: a
    self-signed certificate for both names, loopback ports, its files in ``folder``."""
    openssl = needs("openssl", "openssl")
    certs = folder / "certs"
    certs.mkdir()
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={SITE}",
                    "-addext", f"subjectAltName=DNS:{SITE},DNS:{ADMIN}", "-keyout", str(certs / "privkey.pem"),
                    "-out", str(certs / "fullchain.pem")], check=True, capture_output=True)
    acme = folder / "acme"
    (acme / ".well-known" / "acme-challenge").mkdir(parents=True)
    site = localize((DEPLOY / "nginx.conf").read_text(), study_port, web, runtime)
    site = swap(site, f"/etc/letsencrypt/live/{SITE}/", f"{certs}/")
    site = swap(site, "root /var/www/html;", f"root {acme};")
    site, ipv6 = re.subn(r"^\s*listen \[::\]:.*\n", "", site, flags=re.M)
    assert ipv6 == 3
    site = swap(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = swap(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    (folder / "igym.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                        "scgi"))
    main = (f"daemon off;\nuser root;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
            "events { worker_connections 512; }\n"
            f"http {{\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
            f"    access_log {folder / 'access.log'};\n    {temp}\n    include {folder / 'igym.conf'};\n}}\n")
    path = folder / "nginx-main.conf"
    path.write_text(main)
    return path


# --- the static checks ---------------------------------------------------------------------------------

def test_the_caddyfile_is_valid_for_caddy_as_shipped(tmp_path):
    caddy = needs("caddy", "caddy")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config", str(DEPLOY / "Caddyfile")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "Valid configuration" in out.stdout + out.stderr, out.stderr[-3000:]
    formatted = subprocess.run([caddy, "fmt", str(DEPLOY / "Caddyfile")], capture_output=True, text=True, timeout=60)
    assert formatted.stdout == (DEPLOY / "Caddyfile").read_text(), "the Caddyfile is not as `caddy fmt` writes it"


def test_nginx_conf_passes_nginx_t(tmp_path):
    nginx = needs("nginx", "nginx")
    (tmp_path / "web").mkdir()
    config = nginx_config(tmp_path, 20000, 20080, 20443, tmp_path / "web", tmp_path / "runtime")
    out = subprocess.run([nginx, "-t", "-c", str(config), "-e", str(tmp_path / "error.log")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_systemd_unit_verifies(tmp_path):
    analyze = needs("systemd-analyze", "systemd")
    unit = (DEPLOY / "igym-server.service").read_text()
    # verify checks that ExecStart's program exists: this Python stands in for the study's venv
    (tmp_path / "igym-server.service").write_text(swap(unit, "/srv/igym/venv/bin/python", sys.executable))
    out = subprocess.run([analyze, "verify", str(tmp_path / "igym-server.service")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr
    service = _section(unit, "Service")
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) >= 60 and service["Restart"] == "on-failure"
    assert service["User"] == "igym" and _section(unit, "Install")["WantedBy"] == "multi-user.target"


def test_the_files_agree_with_each_other():
    caddy = (DEPLOY / "Caddyfile").read_text()
    nginx = (DEPLOY / "nginx.conf").read_text()
    unit = (DEPLOY / "igym-server.service").read_text()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    expected = {n: STUDY_PORT + n for n in range(1, SHIPPED_WORKERS + 1)}
    # every worker's path goes to its own port, in both proxies
    assert {int(n): int(p) for n, p in re.findall(r"handle /w(\d+) \{\s*reverse_proxy 127\.0\.0\.1:(\d+)", caddy)} \
        == expected
    assert {int(n): int(p) for n, p in
            re.findall(r"location = /w(\d+) \{\s*proxy_pass http://127\.0\.0\.1:(\d+);", nginx)} == expected
    for path in ("/ws", "/status"):  # the study's port: any worker
        assert re.search(rf"handle {path} \{{\s*reverse_proxy 127\.0\.0\.1:{STUDY_PORT}\s", caddy), path
        assert re.search(rf"location = {path} \{{\s*proxy_pass http://127\.0\.0\.1:{STUDY_PORT};", nginx), path
    # the dashboard: one worker's own port (its login lives there), under its own name
    assert re.search(rf"^{re.escape(ADMIN)} \{{\s*reverse_proxy 127\.0\.0\.1:{STUDY_PORT + 1}\s", caddy, re.M)
    assert re.search(rf"server_name {re.escape(ADMIN)};(.|\n)*?proxy_pass http://127\.0\.0\.1:{STUDY_PORT + 1};", nginx)
    assert re.search(rf"^{re.escape(SITE)} \{{", caddy, re.M) and f"server_name {SITE};" in nginx
    # the server's command lines: as many workers as routes, the ports and public URLs the proxies use
    exec_start = " ".join(_section(unit, "Service")["ExecStart"].replace("\\\n", " ").split())
    command = compose["services"]["igym"]["command"][-1]
    for line in (exec_start, " ".join(command.split())):
        options = _options(line)
        assert options["--workers"] == str(SHIPPED_WORKERS) and options["--port"] == str(STUDY_PORT), line
        assert options["--public-url"] == f"wss://{SITE}/w{{n}}", line
        assert options["--redis"].startswith("redis://") and options["--database"].startswith("postgresql://"), line
        assert "--admin-token" in options and "--collect" in line.split(), line
        assert options["--trust-proxy"] == "127.0.0.1", line  # the proxy on this machine names the client
    # compose: the same services, Caddy on the workers' network with the shipped Caddyfile
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "igym", "caddy"}
    assert services["caddy"]["network_mode"] == "service:igym"
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert "./web:/srv/igym/web:ro" in services["caddy"]["volumes"]
    assert {"80:80", "443:443"} <= set(services["igym"]["ports"])
    assert "redis://redis:6379/0" in command and "@postgres:5432/" in command
    assert services["igym"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # shipped with the server package
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^"igym\.server" = \[[^\]]*"deploy/\*"', pyproject, re.M)


def _section(unit: str, name: str) -> dict[str, str]:
    """The keys of one [section] of a systemd unit (continuation lines joined)."""
    body = re.search(rf"^\[{name}\]\n(.*?)(?=^\[|\Z)", unit, re.M | re.S)
    assert body, name
    keys: dict[str, str] = {}
    for line in body.group(1).replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys


def _options(line: str) -> dict[str, str]:
    words = line.split()
    return {word: words[i + 1] if i + 1 < len(words) else "" for i, word in enumerate(words) if word.startswith("--")}


# --- the real thing ---------------------------------------------------------------------------------------

CHECKOUT = '''"""This checkout's server/ and renderers/ as igym.server and igym.renderers, whatever igym is
installed from (an editable install points at one worktree): put on PYTHONPATH by the test."""
import importlib.util
import sys

_FOLDERS = {{"igym.server": {server!r}, "igym.renderers": {renderers!r}}}


class _Checkout:
    @staticmethod
    def find_spec(name, path=None, target=None):
        folder = _FOLDERS.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(name, folder + "/__init__.py",
                                                      submodule_search_locations=[folder])


sys.meta_path.insert(0, _Checkout)
'''


class Cluster:
    """``python -m igym.server cluster_study.py --workers 2`` on loopback ports, its workers'
    public URLs those of the proxy that the tests put in front (``wss://study.example.org:HTTPS/wN``)."""

    def __init__(self, folder: Path) -> None:
        needs("redis-server", "redis-server")  # --workers without --redis starts a private one
        self.folder = folder
        self.study_port = free_port_run(3)
        self.http_port, self.https_port = free_port(), free_port()
        boot = folder / "boot"
        boot.mkdir()
        (boot / "sitecustomize.py").write_text(CHECKOUT.format(server=str(ROOT / "server"),
                                                               renderers=str(ROOT / "renderers")))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(boot), str(ROOT)]), "SDL_VIDEODRIVER": "dummy",
               "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
        self.log = folder / "server.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "igym.server", str(STUDY), "--workers", "2", "--port", str(self.study_port),
             "--admin-token", TOKEN, "--data", str(folder / "study.sqlite"),
             "--public-url", f"wss://{SITE}:{self.https_port}/w{{n}}"],
            cwd=ROOT, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_S
        while set(self.pids()) != {"w1", "w2"}:
            assert self.process.poll() is None and time.monotonic() < deadline, _tail(self.log)
            time.sleep(0.2)

    def pids(self) -> dict[str, int]:
        """Worker id → pid, of the workers that said they listen."""
        return {m[0]: int(m[1]) for m in re.findall(r"as worker (\S+) \(\S+, pid (\d+)\)", self.log.read_text())}

    def public_url(self, worker: str) -> str:
        return f"wss://{SITE}:{self.https_port}/{worker}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        stop(running.process)
    assert running.process.returncode == 0, _tail(running.log)


@contextlib.contextmanager
def proxy(kind: str, cluster: Cluster, folder: Path, web: Path, runtime: Path) -> Iterator[ssl.SSLContext]:
    """Caddy or nginx with the shipped configuration in front of ``cluster``; yields a TLS
    context that trusts its certificate (and checks the names)."""
    log = folder / f"{kind}.log"
    ports = (cluster.study_port, cluster.http_port, cluster.https_port)
    if kind == "caddy":
        binary = needs("caddy", "caddy")
        config = caddy_config(folder, *ports, web, runtime)
        env = {**os.environ, "XDG_DATA_HOME": str(folder / "data"), "XDG_CONFIG_HOME": str(folder / "config"),
               "HOME": str(folder)}
        process = subprocess.Popen([binary, "run", "--adapter", "caddyfile", "--config", str(config)], env=env,
                                   stdout=open(log, "w"), stderr=subprocess.STDOUT)
        root = folder / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    else:
        binary = needs("nginx", "nginx")
        config = nginx_config(folder, *ports, web, runtime)
        process = subprocess.Popen([binary, "-c", str(config), "-e", str(log)], stdout=open(folder / "nginx.out", "w"),
                                   stderr=subprocess.STDOUT)
        root = folder / "certs" / "fullchain.pem"
    try:
        wait_listening(cluster.https_port, process, log, kind)
        deadline = time.monotonic() + START_S
        while True:  # Caddy issues its certificates from its local CA just after it starts
            try:
                context = ssl.create_default_context(cafile=str(root))
                get(cluster.https_port, SITE, "/", context)
                break
            except (OSError, ssl.SSLError):
                assert process.poll() is None and time.monotonic() < deadline, _tail(log)
                time.sleep(0.2)
        yield context
    finally:
        stop(process, signal.SIGQUIT if kind == "nginx" else signal.SIGTERM, timeout=30)


def get(port: int, host: str, path: str, context: ssl.SSLContext | None,
        headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET ``path`` from ``host`` (which is this machine) on ``port``, over TLS with ``context``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.sock = context.wrap_socket(sock, server_hostname=host) if context is not None else sock
    try:
        conn.request("GET", path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        conn.close()


async def open_ws(url: str, context: ssl.SSLContext, **options) -> ClientConnection:
    """A WebSocket to ``url`` (its host is this machine)."""
    parts = urlsplit(url)
    sock = socket.create_connection(("127.0.0.1", parts.port), timeout=10)
    sock.setblocking(False)
    return await connect(url, sock=sock, ssl=context, server_hostname=parts.hostname, compression=None,
                         ping_interval=None, open_timeout=10, **options)


async def hello(url: str, pid: str, context: ssl.SSLContext, token: str | None = None) -> tuple[dict, ClientConnection]:
    """Say hello at ``url``: the server's first answer, and the connection (left open)."""
    ws = await open_ws(url, context)
    message = {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": pid, **({"token": token} if token else {})}
    await ws.send(wire.pack(message))
    return wire.unpack(await asyncio.wait_for(ws.recv(), 20)), ws


def status(cluster: Cluster, context: ssl.SSLContext) -> dict:
    code, _, body = get(cluster.https_port, SITE, f"/status?token={TOKEN}", context)
    assert code == 200, body[:300]
    return json.loads(body)


def wait_status(cluster: Cluster, context: ssl.SSLContext, until, what: str) -> dict:
    """``/status`` through the proxy, until ``until(cluster part)`` (it refreshes once a second)."""
    deadline = time.monotonic() + 20
    while True:
        part = status(cluster, context).get("cluster", {})
        if until(part):
            return part
        assert time.monotonic() < deadline, f"{what}: {part}"
        time.sleep(0.25)


def site_folders(folder: Path) -> tuple[Path, Path]:
    """A stand-in for build_web.sh's page and for a runtime copy."""
    web, runtime = folder / "web", folder / "runtime"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>deploy test page</title>\n")
    (runtime / "cdn" / "0.9.3").mkdir(parents=True)
    (runtime / "cdn" / "0.9.3" / "pythons.js").write_text("// deploy test runtime\n")
    return web, runtime


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["caddy", "nginx"])
def test_a_study_behind_the_proxy(kind, cluster, tmp_path):
    web, runtime = site_folders(tmp_path)
    with proxy(kind, cluster, tmp_path, web, runtime) as tls:
        asyncio.run(_through_the_proxy(kind, cluster, tls))


async def _through_the_proxy(kind: str, cluster: Cluster, tls: ssl.SSLContext) -> None:
    https = cluster.https_port
    # /status through the proxy: the whole study, both workers, each with its public URL
    workers = wait_status(cluster, tls, lambda c: len(c.get("workers", ())) == 2, "two workers")["workers"]
    assert {w["worker"]: w["url"] for w in workers} == {w: cluster.public_url(w) for w in ("w1", "w2")}

    opened: list[ClientConnection] = []
    try:
        # the study's one URL: some worker welcomes a new participant
        first, ws = await hello(f"wss://{SITE}:{https}/ws", f"{kind}-ws", tls)
        opened.append(ws)
        assert first["t"] == "welcome" and first["pid"] == f"{kind}-ws", first
        # each worker's own path reaches that worker
        held = {}
        for worker in ("w1", "w2"):
            first, ws = await hello(cluster.public_url(worker), f"{kind}-{worker}", tls)
            opened.append(ws)
            assert first["t"] == "welcome", first
            held[worker] = first["token"]
        by_worker = wait_status(cluster, tls, lambda c: all(f"{kind}-{w}" in c["participants_by_worker"].get(w, ())
                                                            for w in ("w1", "w2")), "who holds whom")
        assert f"{kind}-ws" in by_worker["participants_by_worker"]["w1"] + by_worker["participants_by_worker"]["w2"]
        # w1's participant at /w2 is sent to w1's public URL, and is welcomed there through the proxy
        first, ws = await hello(cluster.public_url("w2"), f"{kind}-w1", tls, token=held["w1"])
        assert first == {"t": "move", "url": cluster.public_url("w1")}, first
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == wire.CLOSE_MOVED
        first, ws = await hello(first["url"], f"{kind}-w1", tls, token=held["w1"])
        opened.append(ws)
        assert first["t"] == "welcome" and first["token"] == held["w1"], first
    finally:
        for ws in opened:
            await ws.close()

    # the dashboard's own name: worker w1's dashboard, its cookie Secure because the proxy says https
    code, headers, body = get(https, ADMIN, "/", tls)
    assert code == 200 and headers["Content-Type"].startswith("text/html") and b"login" in body.lower(), body[:300]
    code, headers, _ = get(https, ADMIN, "/login", tls, {"Authorization": f"Bearer {TOKEN}"})
    cookie = headers.get("Set-Cookie", "")
    assert code == 200 and "Secure" in cookie and "HttpOnly" in cookie, cookie
    session = cookie.split(";", 1)[0]
    code, _, body = get(https, ADMIN, "/dashboard/snapshot", tls, {"Cookie": session})
    # the admin name reaches w1 (its login lives there), whose dashboard merges every worker's view
    # once the others have published theirs (each second): w1's own, or a merge that has it
    shown = json.loads(body)["worker"]
    w1 = f":{cluster.pids()['w1']}"
    assert code == 200 and (shown["id"].endswith(w1) or any(w["id"].endswith(w1) for w in shown["workers"])), shown
    live = await open_ws(f"wss://{ADMIN}:{https}/dashboard/live", tls, origin=f"https://{ADMIN}:{https}",
                         additional_headers={"Cookie": session})
    try:
        assert json.loads(await asyncio.wait_for(live.recv(), 20))["type"] == "full"
    finally:
        await live.close()

    # the page and the runtime copy, from their folders; plain HTTP goes to HTTPS
    code, headers, body = get(https, SITE, "/", tls)
    assert code == 200 and b"deploy test page" in body and headers["Cache-Control"] == "no-cache", headers
    code, _, body = get(https, SITE, "/runtime/cdn/0.9.3/pythons.js", tls)
    assert code == 200 and body == b"// deploy test runtime\n"
    code, headers, _ = get(cluster.http_port, SITE, "/index.html", None)
    assert code in (301, 308) and headers["Location"].startswith(f"https://{SITE}"), (code, dict(headers))
