"""Key maps on every kind of action space: combining held keys, axes and the pointer, the
values checked against the space, and the native values handed to the env (real gymnasium
spaces; no env needed)."""

import numpy as np
import pytest
from gymnasium import spaces

from igym.actions import check, read_space
from igym.controls import Axis, KeyMap, SeatInput
from igym.errors import ExperimentError
from igym.records import plain

CAR = spaces.Box(np.array([-1, 0, 0], dtype=np.float32), np.array([1, 1, 1], dtype=np.float32))
CAR_KEYS = "left=[-1,0,0],right=[1,0,0],up=[0,1,0],down=[0,0,0.8],default=[0,0,0]"


def seat(spec_or_map, space, **options):
    keymap = KeyMap.parse(spec_or_map, **options) if isinstance(spec_or_map, str) else spec_or_map
    return SeatInput(keymap, space, "Game 'test', seat agent_0, keys")


def act(seat_input):
    action, source = seat_input.next_action()
    return plain(action), source


def test_box_keys_add_up_from_the_default_and_opposite_keys_cancel():
    car = seat(CAR_KEYS, CAR)
    assert act(car) == ([0.0, 0.0, 0.0], "default")
    car.press("left", 1)
    car.press("up", 2)
    action, source = car.next_action()
    assert isinstance(action, np.ndarray) and action.dtype == np.float32 and action.shape == (3,)
    assert (plain(action), source) == ([-1.0, 1.0, 0.0], "human")  # steer left with gas
    car.press("right", 3)
    assert act(car) == ([0.0, 1.0, 0.0], "human")  # left + right cancel, the gas stays
    car.press("down", 4)
    assert act(car) == ([0.0, 1.0, float(np.float32(0.8))], "human")  # the float32 the env gets


def test_box_sums_are_clipped_to_the_bounds_and_a_composite_replaces_its_keys():
    space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    keys = KeyMap({"a": [0.8, 0.0], "b": [0.8, 0.5], ("a", "b"): [-0.5, -0.5]}, default_action=[0.0, 0.0])
    pad = seat(keys, space)
    pad.press("a", 1)
    pad.press("b", 2)
    assert act(pad) == ([-0.5, -0.5], "human")  # the composite, not 0.8 + 0.8
    keys = KeyMap({"a": [0.8, 0.0], "b": [0.8, 0.5]}, default_action=[0.0, 0.0])
    pad = seat(keys, space)
    pad.press("a", 1)
    pad.press("b", 2)
    assert act(pad) == ([1.0, 0.5], "human")  # 1.6 clipped to the bound


def test_one_number_box_takes_plain_numbers_as_in_the_issue():
    car = seat("left=-1.0,right=1.0,default=0.0", spaces.Box(-1.0, 1.0, (1,), np.float32))
    car.press("left", 1)
    assert act(car) == ([-1.0], "human")


def test_multibinary_ors_bits_and_multidiscrete_sets_named_components():
    bits = seat(KeyMap({"a": [1, 0, 0], "b": [0, 0, 1]}), spaces.MultiBinary(3))
    bits.press("a", 1)
    bits.press("b", 2)
    assert act(bits) == ([1, 0, 1], "human")
    grid = seat("x=[2,None],y={1:3},z=[1,1]", spaces.MultiDiscrete([3, 4]))
    assert act(grid) == ([0, 0], "default")
    grid.press("x", 1)
    grid.press("y", 2)
    assert act(grid) == ([2, 3], "human")
    grid.press("z", 3)
    assert act(grid) == ([1, 1], "human")  # the most recent press wins each component it names


def test_dict_and_tuple_keys_name_their_components():
    space = spaces.Dict({"steer": spaces.Box(-1.0, 1.0, (1,), np.float32), "fire": spaces.Discrete(2)})
    pad = seat(KeyMap({"left": {"steer": [-1.0]}, "right": {"steer": [1.0]}, "space": {"fire": 1}}), space)
    pad.press("left", 1)
    pad.press("space", 2)
    action, source = pad.next_action()
    assert source == "human" and action["fire"] == 1 and action["steer"].dtype == np.float32
    assert plain(action) == {"fire": 1, "steer": [-1.0]}
    pad.press("right", 3)
    assert plain(pad.next_action()[0]) == {"fire": 1, "steer": [0.0]}
    space = spaces.Tuple((spaces.Discrete(3), spaces.Box(0.0, 1.0, (2,), np.float32)))
    pair = seat("a=[2,None],b={1:[1,0]},c={1:[0,1]}", space)
    pair.press("a", 1)
    pair.press("b", 2)
    pair.press("c", 3)
    assert plain(pair.next_action()[0]) == [2, [1.0, 1.0]]


def test_keystroke_on_a_box_is_one_action_per_press():
    pad = seat("left=-1.0,right=1.0", spaces.Box(-2.0, 2.0, (1,), np.float32), mode="keystroke")
    pad.press("left", 1)
    pad.release("left", 2)
    assert act(pad) == ([-1.0], "human")
    assert act(pad) == ([0.0], "default")


def test_discrete_maps_keep_their_rules_and_are_checked():
    pad = seat("left=0,right=2,default=1", spaces.Discrete(3))
    pad.press("left", 1)
    pad.press("right", 2)
    assert pad.next_action() == (2, "human")
    with pytest.raises(ExperimentError, match=r"key 'right' = 3 does not fit the action space Discrete\(3\) — it "
                                              r"takes a whole number from 0 to 2"):
        seat("left=0,right=3", spaces.Discrete(3))


@pytest.mark.parametrize("spec, space, words", [
    ("left=1", CAR, ["key 'left' = 1", "Box(", "a list of 3 numbers"]),
    ("left=[-2,0,0]", CAR, ["key 'left' = [-2, 0, 0]", "component 0 = -2.0: outside the bounds [-1.0, 1.0]"]),
    ("left=[0,0,0],default=[0,0]", CAR, ["default_action = [0, 0]", "a list of 3 numbers"]),
    ("left=fire", spaces.Discrete(4), ["key 'left' = 'fire'", "Discrete(4)"]),
    ("a=[1,2,0]", spaces.MultiBinary(3), ["key 'a' = [1, 2, 0]", "bits (0 or 1)"]),
    ("a={'gas': 1.0}", spaces.Dict({"steer": spaces.Box(-1, 1, (1,))}), ["no component 'gas'", "['steer']"]),
    ("a={0: 5}", spaces.MultiDiscrete([3, 4]), ["component 0 = 5", "0 to 2"]),
])
def test_values_that_do_not_fit_name_the_key_the_value_and_the_space(spec, space, words):
    with pytest.raises(ExperimentError) as error:
        seat(spec, space)
    message = str(error.value)
    assert message.startswith("Game 'test', seat agent_0, keys: ") and "\n" not in message
    for word in words:
        assert word in message, message


def test_parse_reads_numbers_lists_dicts_and_none():
    keymap = KeyMap.parse("left=-1.5, right=[1,0,0], up+right={'gas': 1}, x=[None, 2], default=0.25")
    assert keymap.default_action == 0.25
    values = {"+".join(sorted(k)): v for k, v in keymap.entries}
    assert values == {"left": -1.5, "right": [1, 0, 0], "right+up": {"gas": 1}, "x": [None, 2]}


def test_stick_axis_dead_zone_range_and_inversion():
    stick = Axis(0, 0, dead_zone=0.2)
    assert stick.offset(0.1, -1.0, 1.0) == 0.0  # inside the dead zone
    assert stick.offset(0.6, -1.0, 1.0) == pytest.approx(0.5)  # (0.6 - 0.2) / 0.8 of the half range
    assert stick.offset(-1.0, -2.0, 2.0) == pytest.approx(-2.0)
    assert Axis(1, 0, invert=True, dead_zone=0.0).offset(-0.5, -1.0, 1.0) == pytest.approx(0.5)


def test_trigger_axis_rests_at_minus_one():
    trigger = Axis(5, 1, trigger=True, dead_zone=0.0)
    assert trigger.offset(-1.0, 0.0, 1.0) == 0.0
    assert trigger.offset(0.0, 0.0, 1.0) == pytest.approx(0.5)
    assert trigger.offset(1.0, 0.0, 1.0) == pytest.approx(1.0)


def test_axes_drive_box_components_beside_the_keys():
    keys = KeyMap.parse(CAR_KEYS, axes=[Axis(0, 0, dead_zone=0.1), Axis(5, 1, trigger=True, dead_zone=0.0)])
    car = seat(keys, CAR)
    assert car.axis(0, 0.05, 10) and car.next_action()[1] == "default"  # resting: nothing changes
    assert car.changed_ns is None
    car.axis(0, -0.55, 20)
    assert car.changed_ns == 20  # the stick left its dead zone: the onset is recorded
    car.axis(5, 0.0, 30)
    action, source = car.next_action()
    assert source == "human" and plain(action) == [-0.5, 0.5, 0.0]
    car.press("up", 40)
    assert plain(car.next_action()[0]) == [-0.5, 1.0, 0.0]  # gas key + half trigger, clipped at 1
    assert not car.axis(3, 1.0, 50)  # an axis the map does not use


def test_axes_are_checked_against_the_space():
    with pytest.raises(ExperimentError, match=r"Axis\(0\) to = 5 .* components 0 to 2"):
        seat(KeyMap({}, axes=[Axis(0, 5)]), CAR)
    with pytest.raises(ExperimentError, match="axes drive numbers of a Box space"):
        seat(KeyMap({"a": 1}, axes=[Axis(0, 0)]), spaces.Discrete(3))
    with pytest.raises(ExperimentError, match="unbounded: give low= and high="):
        seat(KeyMap({}, axes=[Axis(0, 0)]), spaces.Box(-np.inf, np.inf, (1,)))
    dict_space = spaces.Dict({"gas": spaces.Box(0.0, 1.0, (1,), np.float32), "fire": spaces.Discrete(2)})
    pad = seat(KeyMap({"space": {"fire": 1}}, axes=[Axis(5, "gas", trigger=True, dead_zone=0.0)]), dict_space)
    pad.axis(5, 1.0, 1)
    assert plain(pad.next_action()[0]) == {"fire": 0, "gas": [1.0]}


def test_pointer_function_chooses_actions_in_canvas_coordinates():
    def cell(x, y, buttons):
        return int(x // 100) if buttons & 1 else None

    board = seat(KeyMap({"space": 3}, pointer=cell), spaces.Discrete(4))
    assert board.next_action() == (0, "default")
    assert board.point(250.0, 40.0, 0, 5) and board.next_action() == (0, "default")  # no button: no action
    board.point(250.0, 40.0, 1, 6)
    assert board.next_action() == (2, "human") and board.changed_ns == 6
    board.point(950.0, 40.0, 1, 7)
    with pytest.raises(ExperimentError, match="pointer function's action = 9"):
        board.next_action()


def test_read_space_by_duck_typing():
    info = read_space(CAR)
    assert (info.kind, info.shape, info.low, info.high) == ("box", (3,), (-1.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert read_space(spaces.Discrete(3, start=1)).start == 1
    assert check(read_space(spaces.Discrete(3, start=1)), 3) == 3
    assert read_space(spaces.Text(5)).kind == "other" and read_space(None).kind == "other"
