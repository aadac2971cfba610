import itertools

import numpy as np
import pytest

from glide_model.sids.tokens import SidFormatError, all_sid_tokens, format_sid, parse_sid, sid_token
from glide_model.sids.trie import SidTrie


def test_token_round_trip():
    codes = (13, 65, 188, 7)
    text = format_sid(codes)
    assert text == "<SID_1=13><SID_2=65><SID_3=188><SID_4=7>"
    assert parse_sid(text, levels=4, codebook_size=256) == codes
    assert parse_sid(format_sid((0,))) == (0,)


def test_all_tokens_are_level_major_and_unique():
    toks = all_sid_tokens(4, 8)
    assert len(toks) == len(set(toks)) == 32
    assert toks[0] == "<SID_1=0>" and toks[8] == "<SID_2=0>" and toks[-1] == "<SID_4=7>"
    assert all(parse_sid(t) for t in toks[:8])


@pytest.mark.parametrize(
    "text",
    ["", "hello", "<SID_2=3>", "<SID_1=3><SID_3=4>", "<SID_1=3> trailing", "<SID_1=-3>", "<SID_1=3><SID_1=4>"],
)
def test_parse_rejects_bad_text(text):
    with pytest.raises(SidFormatError):
        parse_sid(text)


def test_parse_checks_levels_and_codebook():
    with pytest.raises(SidFormatError, match="expected 4"):
        parse_sid(format_sid((1, 2, 3)), levels=4)
    with pytest.raises(SidFormatError, match="outside the codebook"):
        parse_sid(format_sid((1, 256)), codebook_size=256)


@pytest.mark.parametrize("level,code", [(0, 1), (-1, 1), (1, -1)])
def test_sid_token_rejects_bad_level_or_code(level, code):
    with pytest.raises(SidFormatError):
        sid_token(level, code)


def _walk(trie: SidTrie, prefix=()):
    kids = trie.children(prefix)
    if len(prefix) == trie.levels:
        yield tuple(prefix)
        return
    for c in kids:
        yield from _walk(trie, (*prefix, int(c)))


def test_trie_generates_exactly_the_catalog_sids():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, size=(200, 3))
    trie = SidTrie(codes, codebook_size=6)
    catalog = {tuple(r) for r in codes.tolist()}
    generated = list(_walk(trie))
    assert set(generated) == catalog and len(generated) == len(catalog) == len(trie)
    for sid in itertools.product(range(6), repeat=3):
        assert (sid in trie) == (sid in catalog)


def test_trie_children_and_out_of_range_prefixes():
    trie = SidTrie(np.array([[0, 1, 2], [0, 1, 3], [1, 0, 0]]), codebook_size=4)
    assert trie.children(()).tolist() == [0, 1]
    assert trie.children((0,)).tolist() == [1]
    assert trie.children((0, 1)).tolist() == [2, 3]
    assert trie.children((2,)).tolist() == []
    assert trie.children((0, 1, 2)).tolist() == []  # full sequence: nothing follows
    # (0, 4) would fold onto (1, 0) if codes were not range-checked
    assert trie.children((0, 4)).tolist() == []
    assert (0, 4, 0) not in trie and (0, 1, -1) not in trie and (0, 1) not in trie


def test_trie_add_makes_new_sid_reachable():
    trie = SidTrie(np.array([[0, 1, 2]]), codebook_size=4)
    trie.add((3, 3, 3))
    trie.add((0, 1, 3))
    trie.add((0, 1, 3))  # idempotent
    assert len(trie) == 3
    assert set(_walk(trie)) == {(0, 1, 2), (3, 3, 3), (0, 1, 3)}
    assert trie.children(()).tolist() == [0, 3]


@pytest.mark.parametrize("bad", [(0, 1), (0, 1, 4), (0, -1, 1), (0, 1, 2, 3)])
def test_trie_add_rejects_bad_sid(bad):
    trie = SidTrie(np.array([[0, 1, 2]]), codebook_size=4)
    with pytest.raises(ValueError):
        trie.add(bad)
    assert len(trie) == 1


def test_trie_rejects_bad_construction():
    with pytest.raises(ValueError, match="non-empty"):
        SidTrie(np.zeros((0, 4), dtype=int), 8)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        SidTrie(np.array([[0, 8]]), 8)
    with pytest.raises(ValueError, match="overflow"):
        SidTrie(np.array([[0, 1, 2, 3, 4]]), 2**16)
