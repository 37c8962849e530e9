"""What the request-log boundary does to values no column could hold."""

from __future__ import annotations

from gateway.requestlog.storable import CUT_MARKER, REPLACEMENT, storable_json, storable_text


def test_text_loses_nuls_and_surrogates_and_is_cut_visibly() -> None:
    assert storable_text("a\x00b") == f"a{REPLACEMENT}b"
    assert storable_text("a\ud800b") == f"a{REPLACEMENT}b"
    cut = storable_text("x" * 300, 200)
    assert len(cut) == 200
    assert cut.endswith(CUT_MARKER)
    assert storable_text("x" * 200, 200) == "x" * 200


def test_json_is_cleaned_in_keys_and_values_and_kept_when_clean() -> None:
    clean = {"messages": [{"content": "line\nbreak \u00e9"}]}
    assert storable_json(clean) is clean
    dirty = {"k\x00": ["v\x00", {"n": "\ud83d"}], "n": 1}
    assert storable_json(dirty) == {
        f"k{REPLACEMENT}": [f"v{REPLACEMENT}", {"n": REPLACEMENT}],
        "n": 1,
    }
