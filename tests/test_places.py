"""Countries go by several names in news: the capital stands for the government ("Tokyo", "Seoul")."""
from __future__ import annotations

import pytest

from rag import places


@pytest.mark.parametrize("text, named, not_named", [
    ("Tokyo is looking to stabilize relations.", {"Japan"}, {"Tokyo"}),
    ("Japan-South Korea relations", {"Tokyo", "Seoul"}, set()),
    ("talks in Washington D.C. on Monday", {"United States"}, set()),
    ("North Korea fired a missile.", {"Pyongyang"}, {"Seoul"}),  # the longest name wins: not "Korea" alone
    ("Let us see what the male voters do.", set(), {"United States", "Maldives"}),  # names are capitalised
    ("Japan Looks to Boost Trust with S. Korea's President Lee", {"Seoul", "Tokyo"}, set()),  # a headline's "S."
    ("N. Korea fired a missile.", {"Pyongyang"}, {"Seoul"}),
    ("the U.S. Korea policy", set(), {"Seoul"}),  # the "S." of "U.S." is no "South"
    ("The Japanese leader", set(), {"Japan"}),  # demonyms are not names of the country: see the module
])
def test_a_country_named_one_way_is_found_under_its_other_names(text: str, named: set[str], not_named: set[str]) -> None:
    others = places.other_names(text)
    assert all(name in others for name in named)
    assert not any(name in others for name in not_named)
