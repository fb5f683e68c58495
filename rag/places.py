"""Other names of the countries a text mentions: news writes "Tokyo" for Japan and "Seoul" for South
Korea ("Tokyo is looking to stabilize relations ..."), so a question that says "Japan" should find them.
The names come from the countryinfo package: each country's name, its longer alternative names and its
capital name one another. Demonyms are left out: "Indian" and "French" also name peoples, languages and
cuisines, and with them XQuAD span F1 fell by 0.1."""
from __future__ import annotations

import re
from functools import lru_cache

_CAPITALISED = re.compile(r"\b[A-Z][\w']*")  # a capitalised word: "Japan" in "Japan-South Korea"
_CODE = re.compile(r"[A-Z]{2,3}")  # "JP", "USA": ISO codes, not names prose uses ("US" is also "us")
# Headlines shorten a compass word: "S. Korea's President", "N. Korea". Not the "S." of "U.S.".
_COMPASS = re.compile(r"(?<![\w.])([NSEW])\. (?=[A-Z])")
_COMPASS_WORDS = {"N": "North ", "S": "South ", "E": "East ", "W": "West "}


def _names(info: dict) -> set[str]:
    capitals = info.get("capital") or []
    capitals = [capitals] if isinstance(capitals, str) else capitals  # a list for the Vatican
    names = {info.get("name") or ""}
    names.update(re.sub(r"\s+D\.C\.$", "", c) for c in capitals)  # "Washington D.C." is "Washington"
    names.update(n for n in info.get("altSpellings") or [] if "," not in n and not _CODE.fullmatch(n))
    return {n for n in names if len(n) > 2 and n.isascii() and _CAPITALISED.match(n)}


@lru_cache(maxsize=1)
def _table() -> dict[str, list[tuple[str, str]]]:
    """First word of a name -> (name, the country's other names), longest name first."""
    from countryinfo import CountryInfo

    others: dict[str, set[str]] = {}
    for info in CountryInfo.all().values():
        names = _names(info)
        for name in names:
            others.setdefault(name, set()).update(names - {name})
    by_first: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(others, key=len, reverse=True):  # "Guinea-Bissau" before "Guinea"
        by_first.setdefault(_CAPITALISED.match(name).group(), []).append((name, " ".join(sorted(others[name]))))
    return by_first


def load() -> None:
    """Read the table now (at start-up) rather than on the first question."""
    _table()


def other_names(text: str) -> str:
    """The other names of every country the text names, space-separated, for matching words (pure,
    given the table): "Tokyo is looking ..." -> "Japan Nihon Nippon". Names are matched as
    written, capitalised: "us" and "male" are not the U.S. and the Maldives' capital; a headline's
    "S. Korea" is South Korea."""
    by_first, found, after = _table(), [], 0
    text = _COMPASS.sub(lambda m: _COMPASS_WORDS[m.group(1)], text)
    for m in _CAPITALISED.finditer(text):
        if m.start() < after:
            continue
        for name, names in by_first.get(m.group(), ()):
            end = m.start() + len(name)
            if text.startswith(name, m.start()) and not text[end:end + 1].isalnum():
                found.append(names)
                after = end
                break
    return " ".join(found)
