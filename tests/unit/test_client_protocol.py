"""The one client protocol object every igym client uses (desktop, lockstep, web uploader):
hello, token, pings and the reconnect policy — checked without sockets, on a manual clock
(against the real server: tests/integration/test_one_flow.py)."""

from __future__ import annotations

import random

from igym import wire
from igym.client_protocol import BACKOFF_FIRST_S, BACKOFF_MAX_S, ClientProtocol
from igym.clock import ManualClock


def test_hello_carries_the_version_mode_and_the_token_once_there_is_one():
    protocol = ClientProtocol("P1", mode="upload")
    assert protocol.hello() == {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": "P1", "mode": "upload"}
    welcome = protocol.receive({"t": "welcome", "token": "tok", "experiment": "x"})
    assert welcome["experiment"] == "x" and protocol.token == "tok" and protocol.connections == 1
    assert protocol.hello()["token"] == "tok" and "mode" not in ClientProtocol("P2").hello()


def test_pings_are_answered_here_and_other_messages_pass_through():
    protocol = ClientProtocol("P1")
    assert protocol.receive({"t": "ping", "n": 7}) is None
    assert protocol.take_outbox() == [{"t": "pong", "n": 7}] and protocol.take_outbox() == []
    frame = {"t": "frame", "n": 1}
    assert protocol.receive(frame) is frame and protocol.receive(b"junk") is None


def test_backoff_doubles_to_its_cap_with_jitter_and_starts_over_after_a_welcome():
    protocol = ClientProtocol("P1", rng=random.Random(1))
    delays = []
    for _ in range(8):
        protocol.closed(None)
        delays.append(protocol.retry_delay())
    nominal = [min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** i) for i in range(8)]
    assert all(0.75 * n <= d <= 1.25 * n for d, n in zip(delays, nominal)), delays
    assert len(set(delays)) == len(delays)  # jittered: a crowd does not come back in step
    protocol.receive({"t": "welcome", "token": "t"})
    protocol.closed(1006)
    assert protocol.retry_delay() <= 1.25 * BACKOFF_FIRST_S


def test_the_server_meant_it_only_with_a_final_code_and_a_reason():
    for code in wire.CLOSE_FINAL:
        protocol = ClientProtocol("P1")
        assert protocol.closed(code, "why").final and protocol.retry_delay() is None
    took_part = ClientProtocol("P1").closed(wire.CLOSE_TOOK_PART, "participant P1 already took part")
    assert took_part.took_part
    for code, reason in ((wire.CLOSE_ENDED, ""), (1006, "abnormal"), (wire.CLOSE_BUSY, "busy"), (None, "")):
        protocol = ClientProtocol("P1")
        assert not protocol.closed(code, reason).final and protocol.retry_delay() is not None


def test_a_client_gives_up_after_max_reconnect_s_without_the_server():
    clock = ManualClock()
    protocol = ClientProtocol("P1", max_reconnect_s=10, clock=clock)
    protocol.closed(1006)
    assert protocol.retry_delay() is not None
    clock.advance(9)
    protocol.closed(1006)
    assert protocol.retry_delay() is not None
    clock.advance(2)
    protocol.closed(1006)
    assert protocol.retry_delay() is None


def test_a_move_sends_the_next_connection_to_another_worker_at_once():
    protocol = ClientProtocol("P1", "ws://127.0.0.1:9000", token="tok")
    assert protocol.receive({"t": "move", "url": "ws://127.0.0.1:9002"}) is None
    closed = protocol.closed(wire.CLOSE_MOVED, "served by another worker")
    assert not closed.final and protocol.retry_delay() == 0.0 and protocol.url == "ws://127.0.0.1:9002"
    assert protocol.hello()["token"] == "tok"  # the place is kept: the other worker knows the token
    protocol.closed(1006)
    assert protocol.retry_delay() > 0  # an ordinary drop afterwards backs off again


def test_a_client_sent_to_a_worker_that_is_gone_comes_back_to_the_study_address():
    protocol = ClientProtocol("P1", "ws://127.0.0.1:9000")
    protocol.receive({"t": "move", "url": "ws://127.0.0.1:9002"})
    protocol.closed(wire.CLOSE_MOVED, "served by another worker")
    assert protocol.retry_delay() == 0.0 and protocol.url == "ws://127.0.0.1:9002"
    protocol.closed(None)  # connection refused: that worker was killed
    assert protocol.url == "ws://127.0.0.1:9000" and protocol.retry_delay() > 0
