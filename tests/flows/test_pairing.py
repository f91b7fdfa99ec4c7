"""Pairing strategies and recording pairs in the catalog."""

from __future__ import annotations

import numpy as np
import pytest

from flows.pairing import colour_embedding, make_pairs, pair_all, pair_random, pair_similar

CONTENTS = ["c1", "c2", "c3"]
STYLES = ["s1", "s2", "s3", "s4"]


def test_all_pairs_every_content_with_every_style():
    pairs = pair_all(CONTENTS, STYLES)
    assert len(pairs) == 12
    assert {(p.content_id, p.style_ids) for p in pairs} == {
        (c, (s,)) for c in CONTENTS for s in STYLES
    }
    assert all(p.style_weights == (1.0,) for p in pairs)


def test_all_pairs_with_two_styles_and_blend_weights():
    pairs = pair_all(CONTENTS, STYLES, k=2, weights=[3, 1])
    assert len(pairs) == 3 * 6  # C(4, 2) style sets per content
    assert all(p.style_weights == (0.75, 0.25) for p in pairs)


def test_pair_ids_are_stable_and_distinguish_weights():
    a = pair_all(["c"], ["s1", "s2"], k=2, weights=[1, 1])[0]
    b = pair_all(["c"], ["s1", "s2"], k=2, weights=[2, 2])[0]  # same after normalising
    c = pair_all(["c"], ["s1", "s2"], k=2, weights=[3, 1])[0]
    assert a.pair_id == b.pair_id != c.pair_id


def test_random_is_seeded_and_distinct():
    one = pair_random(CONTENTS, STYLES, k=2, seed=7)
    two = pair_random(CONTENTS, STYLES, k=2, seed=7)
    other = pair_random(CONTENTS, STYLES, k=2, seed=8)
    assert one == two
    assert [p.style_ids for p in one] != [p.style_ids for p in other] or len(STYLES) < 3
    assert all(len(set(p.style_ids)) == 2 for p in one)


def test_similar_picks_the_nearest_colours():
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 250
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 250
    reddish = red.copy()
    reddish[:2] = blue[:2]
    emb = {
        "c": colour_embedding(reddish),
        "s_red": colour_embedding(red),
        "s_blue": colour_embedding(blue),
    }
    [pair] = pair_similar(["c"], ["s_blue", "s_red"], emb, k=1)
    assert pair.style_ids == ("s_red",)
    [pair2] = pair_similar(["c"], ["s_blue", "s_red"], emb, k=2)
    assert pair2.style_ids == ("s_red", "s_blue")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"strategy": "best", "contents": CONTENTS, "styles": STYLES},
            "choose one of all, random, similar",
        ),
        ({"strategy": "all", "contents": [], "styles": STYLES}, "no accepted content images"),
        ({"strategy": "all", "contents": CONTENTS, "styles": STYLES, "k": 5}, "only 4 style image"),
        (
            {"strategy": "all", "contents": CONTENTS, "styles": STYLES, "k": 2, "weights": [1]},
            "1 style weights for 2 styles",
        ),
    ],
)
def test_bad_requests_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_pairs(**kwargs)
