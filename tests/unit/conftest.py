"""Unit tests open no network sockets: a test that tries fails at once, naming the layer it belongs to."""

import socket

import pytest


class _NoSockets(socket.socket):
    def __init__(self, family: int = -1, *args, **kwargs):
        if family in (-1, socket.AF_INET, socket.AF_INET6):  # -1: the default, AF_INET
            raise RuntimeError("a unit test opened a network socket: move it to tests/integration")
        super().__init__(family, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network_sockets(monkeypatch):
    monkeypatch.setattr(socket, "socket", _NoSockets)
