"""Key maps: held vs keystroke, composites, fallbacks, and the --keys syntax."""

import pytest

from igym.controls import KeyMap, SeatInput
from igym.errors import ExperimentError

SLIME_KEYS = {"right": 1, "left": 5, "up": 3, ("right", "up"): 2, ("left", "up"): 4}


def test_held_follows_keys_and_composites_win():
    seat = SeatInput(KeyMap(SLIME_KEYS, default_action=0))
    assert seat.next_action() == (0, "default")
    seat.press("right", 1)
    assert seat.next_action() == (1, "human")
    seat.press("up", 2)
    assert seat.next_action() == (2, "human")  # the composite beats either single key
    seat.release("right", 3)
    assert seat.next_action() == (3, "human")
    assert seat.held_names() == "up"
    assert seat.changed_ns == 3


def test_most_recent_key_wins_among_equals():
    seat = SeatInput(KeyMap({"left": 0, "right": 2}, default_action=1))
    seat.press("left", 1)
    seat.press("right", 2)
    assert seat.next_action() == (2, "human")
    seat.release("right", 3)
    assert seat.next_action() == (0, "human")


def test_keystroke_consumes_each_press_once_and_keeps_quick_presses():
    seat = SeatInput(KeyMap({"up": 0, "down": 1, "space": 4}, mode="keystroke", default_action=6))
    seat.press("up", 1)
    seat.release("up", 2)
    seat.press("space", 3)
    seat.release("space", 4)  # both presses happen between two steps
    assert seat.next_action() == (0, "human")
    assert seat.next_action() == (4, "human")
    assert seat.next_action() == (6, "default")  # holding or not, no new press → default


def test_previous_fallback_repeats_last_human_action():
    seat = SeatInput(KeyMap({"left": 0, "right": 2}, default_action=1, fallback="previous"))
    assert seat.next_action() == (1, "default")  # nothing to repeat yet
    seat.press("right", 1)
    seat.next_action()
    seat.release("right", 2)
    assert seat.next_action() == (2, "previous")


def test_unmapped_keys_are_ignored_and_release_all_forgets():
    seat = SeatInput(KeyMap({"left": 0}))
    assert not seat.press("x", 1)
    assert seat.press("LEFT", 1)  # key names are case-insensitive
    seat.release_all(5)
    assert seat.held == {} and seat.changed_ns == 5


def test_parse_keys_option():
    keymap = KeyMap.parse("left=0, right=2, right+up=7, default=1", mode="held")
    assert keymap.default_action == 1
    seat = SeatInput(keymap)
    seat.press("right", 1)
    seat.press("up", 2)
    assert seat.next_action() == (7, "human")


@pytest.mark.parametrize("bad, words", [
    (dict(mapping={}), "empty"),
    (dict(mapping={"a": 0}, mode="hold"), "mode"),
    (dict(mapping={"a": 0}, fallback="last"), "fallback"),
    (dict(mapping={("a", 3): 0}), "key names"),
])
def test_bad_keymaps_name_the_problem(bad, words):
    mapping = bad.pop("mapping")
    with pytest.raises(ExperimentError, match=words):
        KeyMap(mapping, **bad)


def test_parse_rejects_entries_without_equals():
    with pytest.raises(ExperimentError, match="KEY=ACTION"):
        KeyMap.parse("left")
