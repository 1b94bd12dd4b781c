"""Start upstream Interactive Gym 0.1.1 (Flask + Flask-SocketIO + eventlet) on 127.0.0.1.

Runs inside the upstream venv: ``~/.cache/igym-upstream/venv/bin/python
tests/bench/upstream/serve.py --port 8123 [--as-shipped]``. Run it with a scratch
working directory: upstream writes ``./iglog.log`` and ``./data/`` there.

Why not ``interactive_gym.server.app.run(config)``: that function first asks
``https://api.ipify.org`` for the public IP (and routes a UDP socket towards 8.8.8.8) just
to print it; this benchmark talks to 127.0.0.1 only. So this file does what ``run`` does
for serving — set the app's module globals (config, generic stager, Pyodide coordinator,
group manager) and call ``socketio.run`` — without the look-ups.

Two more things differ from a plain install, both stated in the bench output:

* The 0.1.1 wheel ships no templates, JS or assets (``GET /<subject_id>`` would raise
  ``TemplateNotFound`` after building the participant's stager). A one-line stub page is
  served instead; the load clients never render it.
* ``GameManager.render_server_game`` in 0.1.1 crashes whenever a scene sets
  ``env_to_state_fn`` (it calls ``.tobytes()`` on the image, which is ``None`` in that
  mode), so the server-side object-dict mode never sends a frame. Unless ``--as-shipped``
  is given, it is replaced by ``_render_server_game`` below, which sends the same
  ``environment_state`` event with ``game_image_binary: None`` — the smallest change that
  lets that mode run. ``--as-shipped`` keeps upstream's method (to show the crash).
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import jinja2  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interactive_gym.server import app as upstream  # noqa: E402
from interactive_gym.server import game_manager, player_pairing_manager, pyodide_game_coordinator  # noqa: E402

import experiment  # noqa: E402


def _render_server_game(self, game) -> None:
    """Object-dict mode only: the env as object dicts plus HUD text to the game's room."""
    scene = self.scene
    self.sio.emit("environment_state",
                  {"game_state_objects": scene.env_to_state_fn(game.env, scene), "game_image_binary": None,
                   "step": game.tick_num, "hud_text": scene.hud_text_fn(game) if scene.hud_text_fn else None},
                  room=game.game_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--as-shipped", action="store_true", help="keep upstream's crashing render method")
    options = parser.parse_args()

    config = experiment.build(options.port)
    upstream.CONFIG = config
    upstream.GENERIC_STAGER = config.stager
    upstream.PYODIDE_COORDINATOR = pyodide_game_coordinator.PyodideGameCoordinator(upstream.socketio)
    upstream.GROUP_MANAGER = player_pairing_manager.PlayerGroupManager()
    upstream.app.jinja_loader = jinja2.DictLoader(
        {"index.html": "<!doctype html><p>igym bench stub: the interactive-gym 0.1.1 wheel ships no page.</p>"})
    if not options.as_shipped:
        game_manager.GameManager.render_server_game = _render_server_game
    print(f"ready {options.port} async_mode={upstream.socketio.async_mode}", flush=True)
    upstream.socketio.run(upstream.app, host="127.0.0.1", port=options.port, log_output=False)


if __name__ == "__main__":
    main()
