"""The wire form of frames: decode(encode(f, p), p) == f for any frames f and p."""

from hypothesis import given, settings, strategies as st

from igym import render as r

ids = st.sampled_from([f"s{i}" for i in range(12)])
coord = st.one_of(st.integers(-2000, 2000), st.floats(-2000, 2000, allow_nan=False))
size = st.one_of(st.integers(0, 500), st.floats(0, 500, allow_nan=False))
color = st.one_of(st.tuples(*[st.integers(0, 255)] * 3), st.tuples(*[st.integers(0, 255)] * 4))
points = st.lists(st.tuples(coord, coord), min_size=2, max_size=6).map(tuple)
common = dict(depth=st.integers(-5, 5), static=st.booleans())


def shape(id_):
    return st.one_of(
        st.builds(r.Rect, st.just(id_), coord, coord, size, size, color, size, size, **common),
        st.builds(r.Circle, st.just(id_), coord, coord, size, color, size,
                  st.sampled_from(r.CIRCLE_PARTS), **common),
        st.builds(r.Ellipse, st.just(id_), coord, coord, size, size, color, size, **common),
        st.builds(r.Line, st.just(id_), points, color, size, st.sampled_from(r.LINE_FILLS), **common),
        st.builds(r.Polygon, st.just(id_), points, color, size, **common),
        st.builds(r.Text, st.just(id_), coord, coord, st.text(max_size=20), size, color,
                  st.one_of(st.none(), st.text(max_size=5)), st.sampled_from(r.ANCHORS), **common),
        st.builds(r.Sprite, st.just(id_), coord, coord, size, size, st.text(min_size=1, max_size=8),
                  st.one_of(st.none(), st.text(max_size=8)), coord, st.integers(0, 255), **common),
        st.builds(r.Image, st.just(id_), coord, coord, size, size, st.binary(max_size=12),
                  st.tuples(st.integers(1, 4), st.integers(1, 4)), **common),
    )


frames = st.builds(
    lambda shapes, hud, episode, step: r.Frame.of(shapes, hud, episode, step),
    st.lists(ids, unique=True, max_size=8).flatmap(lambda names: st.tuples(*[shape(n) for n in names])),
    st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=3),
    st.integers(0, 1000), st.integers(0, 100000))


@settings(max_examples=200, deadline=None)
@given(frames, st.one_of(st.none(), frames))
def test_decode_inverts_encode(frame, previous):
    assert r.decode(r.encode(frame, previous), previous) == frame


@settings(max_examples=200, deadline=None)
@given(frames)
def test_unchanged_frame_costs_almost_nothing(frame):
    again = r.Frame(frame.shapes, frame.hud, frame.episode, frame.step + 1)
    data = r.encode(again, frame)
    assert r.decode(data, frame) == again
    assert len(data) <= 16


def test_delta_sends_only_changed_fields():
    before = r.Frame.of([r.Circle("ball", 100.25, 50.5, 5, (217, 79, 0)), r.Rect("court", 0, 0, 600, 400, static=True)])
    after = r.Frame.of([r.Circle("ball", 101.75, 49.5, 5, (217, 79, 0)), r.Rect("court", 0, 0, 600, 400, static=True)],
                       step=1)
    delta = r.encode(after, before)
    assert len(delta) < 40 < len(r.encode(after))
    assert r.decode(delta, before) == after


def test_order_change_and_kind_change_round_trip():
    before = r.Frame.of([r.Rect("a", 0, 0, 1, 1), r.Circle("b", 0, 0, 1)])
    after = r.Frame.of([r.Text("b", 0, 0, "now text"), r.Rect("a", 0, 0, 1, 1)])
    assert r.decode(r.encode(after, before), before) == after


def test_duplicate_ids_are_refused():
    import pytest
    with pytest.raises(ValueError):
        r.encode(r.Frame.of([r.Rect("a", 0, 0, 1, 1), r.Rect("a", 1, 1, 1, 1)]))
    with pytest.raises(ValueError, match="two shapes with id 'a'"):
        r.validate_shapes([r.Rect("a", 0, 0, 1, 1), r.Rect("a", 1, 1, 1, 1)])
