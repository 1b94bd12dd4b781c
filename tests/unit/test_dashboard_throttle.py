"""The dashboard's door without sockets or sleeps: the login throttle and the live feed's token
bucket on a hand-moved clock, and how the client's address is taken behind a proxy."""

import pytest

from igym.server.dashboard import throttle
from igym.server.dashboard.throttle import (DRAIN_S, EVENT_EVERY_S, FIRST_DELAY_S, FREE, MAX_ADDRESSES,
                                            MAX_DELAY_S, MAX_HELD, MAX_HELD_OVERALL, OVERALL_FREE, LoginThrottle,
                                            TokenBucket, address_key, client_address, trusted_networks)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answered_at_once(gate: LoginThrottle, address: str, count: int) -> None:
    for _ in range(count):
        verdict = gate.failed(address)
        assert verdict.delay_s == 0 and not verdict.refuse and verdict.event is None


def test_wrong_tokens_beyond_the_free_ones_wait_longer_each_time_up_to_a_ceiling():
    clock = Clock()
    gate = LoginThrottle(clock)
    answered_at_once(gate, "203.0.113.7", FREE)
    delays, retry = [], []
    for _ in range(8):
        verdict = gate.failed("203.0.113.7")
        gate.answered("203.0.113.7")  # each answered before the next: one script, one try at a time
        delays.append(verdict.delay_s)
        retry.append(verdict.retry_after_s)
        assert not verdict.refuse
    assert delays[:5] == [FIRST_DELAY_S * 2 ** n for n in range(5)] and set(delays[5:]) == {MAX_DELAY_S}
    assert retry[0] == 1 and retry[-1] == MAX_DELAY_S  # whole seconds for Retry-After, never 0
    assert gate.failed("198.51.100.1").delay_s == 0  # another address is not slowed by this one


def test_an_address_quiet_long_enough_is_forgiven_one_failure_per_drain_period():
    clock = Clock()
    gate = LoginThrottle(clock)
    answered_at_once(gate, "203.0.113.7", FREE)
    assert gate.failed("203.0.113.7").delay_s > 0
    gate.answered("203.0.113.7")
    clock.now += 2 * DRAIN_S  # two forgotten: level FREE + 1 - 2, so two more are free
    answered_at_once(gate, "203.0.113.7", 1)
    assert gate.failed("203.0.113.7").delay_s > 0
    gate.answered("203.0.113.7")
    clock.now += 3600  # an hour later a flood so long ago costs nothing: the bucket has a ceiling
    answered_at_once(gate, "203.0.113.7", FREE)


def test_answers_held_back_are_few_the_rest_are_refused_at_once_with_retry_after():
    gate = LoginThrottle(Clock())
    answered_at_once(gate, "203.0.113.7", FREE)
    held = [gate.failed("203.0.113.7") for _ in range(MAX_HELD)]  # a script with many connections at once
    assert all(v.delay_s > 0 and not v.refuse for v in held)
    refused = gate.failed("203.0.113.7")
    assert refused.refuse and refused.retry_after_s >= 1
    gate.answered("203.0.113.7")  # one held answer went out: its place is free again
    assert not gate.failed("203.0.113.7").refuse


def test_everyone_together_is_throttled_and_at_most_so_many_answers_are_held_in_all():
    gate = LoginThrottle(Clock())
    crowd = [f"198.51.100.{n}" for n in range(1, 200)]
    verdicts = [gate.failed(address) for address in crowd]  # one wrong token each: none over its own limit
    assert all(v.delay_s == 0 for v in verdicts[:OVERALL_FREE])
    later = verdicts[OVERALL_FREE:]
    assert all(v.delay_s > 0 for v in later)
    assert sum(not v.refuse for v in later) == MAX_HELD_OVERALL  # the rest: 429 at once, no connection held
    events = [v.event for v in verdicts if v.event is not None]
    assert [(e["scope"], e["address"]) for e in events] == [("overall", "198.51.100.21")]  # one, not 179


def test_one_event_per_burst_per_address_per_window():
    clock = Clock()
    gate = LoginThrottle(clock)
    events = []
    for _ in range(3):  # three bursts from one address, a few minutes apart
        for _ in range(FREE + 6):
            verdict = gate.failed("203.0.113.7")
            if verdict.delay_s and not verdict.refuse:
                gate.answered("203.0.113.7")
            events.append(verdict.event)
        clock.now += EVENT_EVERY_S / 2
    recorded = [e for e in events if e is not None]
    assert len(recorded) == 2  # the first burst, and the third (a window later); not the second, not 30
    assert recorded[0] == {"scope": "address", "address": "203.0.113.7", "failures": FREE + 1,
                           "delay_s": FIRST_DELAY_S}


def test_an_ipv6_client_is_its_64_and_memory_is_bounded():
    gate = LoginThrottle(Clock())
    answered_at_once(gate, "2001:db8:1:2::1", FREE - 1)
    assert gate.failed("2001:db8:1:2:ffff::9").delay_s == 0  # the same /64: its FREE-th …
    assert gate.failed("2001:db8:1:2::abcd").delay_s > 0  # … and over it, whatever the interface id
    assert address_key("::ffff:192.0.2.5") == "192.0.2.5" and address_key("2001:db8::1") == "2001:db8::/64"
    big = LoginThrottle(Clock())
    for n in range(MAX_ADDRESSES + 500):
        big.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(big._buckets) <= MAX_ADDRESSES


def test_the_client_address_is_the_peer_unless_the_peer_is_a_trusted_proxy():
    local = trusted_networks(["127.0.0.1"])
    # no --trust-proxy: X-Forwarded-For is anyone's say and is never read
    assert client_address("127.0.0.1", ["192.0.2.9"], ()) == "127.0.0.1"
    # a trusted proxy appended the client's address (nginx), after whatever the client wrote itself
    assert client_address("127.0.0.1", ["6.6.6.6, 192.0.2.9"], local) == "192.0.2.9"
    assert client_address("127.0.0.1", ["6.6.6.6", "192.0.2.9"], local) == "192.0.2.9"  # two header lines
    # a request that did not come through the proxy cannot claim an address
    assert client_address("192.0.2.50", ["192.0.2.9"], local) == "192.0.2.50"
    # proxies in a chain (a CDN in front of the proxy): every trusted hop is skipped
    chain = trusted_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address("127.0.0.1", ["192.0.2.9, 10.1.2.3"], chain) == "192.0.2.9"
    # garbage or nothing from a trusted hop: the hop itself
    assert client_address("127.0.0.1", ["not-an-address"], local) == "127.0.0.1"
    assert client_address("127.0.0.1", [], local) == "127.0.0.1"
    assert client_address("::ffff:127.0.0.1", ["[2001:db8::7]:4711"], local) == "2001:db8::7"
    assert client_address(None, [], local) == "unknown"


def test_a_wrong_trust_proxy_value_is_one_line_naming_the_option():
    with pytest.raises(ValueError, match=r"^--trust-proxy 'proxy\.local' is not an IP address or network: .*127\.0\."):
        trusted_networks(["127.0.0.1", "proxy.local"])
    assert [str(n) for n in trusted_networks(["10.0.0.7/24", "::1"])] == ["10.0.0.0/24", "::1/128"]


def test_the_live_feeds_token_bucket_allows_a_burst_then_a_rate():
    clock = Clock()
    bucket = TokenBucket(clock=clock)
    assert all(bucket.take() for _ in range(throttle.LIVE_BURST))
    assert not bucket.take()  # an eleventh at once: the feed closes it
    clock.now += 1 / throttle.LIVE_PER_S
    assert bucket.take() and not bucket.take()
    clock.now += 3600
    assert sum(bucket.take() for _ in range(100)) == throttle.LIVE_BURST  # saved up to the burst, no more
