"""The Brown corpus as tagged sentences, read with NLTK's corpus reader straight from NLTK's
`brown.zip` (no downloader, no unpacking).

Two tag sets:

- "brown": Brown's own tags, simplified by `simplify_brown_tag`:
  1. the suffixes -HL (headline), -TL (title) and -NC (cited word) are stripped, however many
     and in any order (NN-TL-HL -> NN), and so are the corpus's two truncated ones,
     -T (FW-IN+AT-T) and -N (PPSS+BER-N);
  2. any foreign word, FW-<tag>, becomes FW;
  3. compounds (PPS+BEZ "he's", MD+PPSS "shall i") and negation marks (BEZ* "isn't", DO* "don't")
     are kept whole: each tags one token that stands for two words or a negated form, and they
     are tags of the Brown tag set in their own right. A lone "*" (not, n't) stays "*".
  The corpus's 472 raw tags become 181.
- "universal": the 12 tags of Petrov, Das & McDonald (2012), "A Universal Part-of-Speech
  Tagset" (LREC), by their Brown mapping `en-brown.map` (github.com/slavpetrov/universal-pos-tags;
  NLTK ships the same file as universal_tagset/en-brown.map). BROWN_TO_UNIVERSAL is that mapping
  keyed by the simplified tags above: all raw tags that simplify alike map alike there, so it
  gives en-brown.map's answer for each of the corpus's 472 raw tags. Its quirks are kept for
  comparability: most contractions (PPS+BEZ, NN+MD) are PRT, CS is ADP, EX is PRT, PP$ is DET.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from bertcompress.core.errors import UserError
from bertcompress.data.tagging import TaggedSentence

TAGSETS = ("universal", "brown")
UNIVERSAL_TAGS = ("ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", "X", ".")
# For the domain experiment: the Press sections A-C against the Imaginative prose sections K-R
# of the Brown corpus manual (Francis & Kucera 1979), by their names in NLTK's cats.txt.
NEWS_CATEGORIES = ("news", "editorial", "reviews")
FICTION_CATEGORIES = ("fiction", "mystery", "science_fiction", "adventure", "romance", "humor")

_FILEIDS = r"c[a-z]\d\d"  # ca01 ... cr09: the pattern of NLTK's own brown loader
_ZIP_ROOT = "brown/"
_SUFFIXES = re.compile(r"(?:-(?:HL|TL|NC|T|N))+$")

_PUNCT = ("'", "''", "(", ")", ",", "--", ".", ":", "``")
BROWN_TO_UNIVERSAL: dict[str, str] = {
    **{tag: "." for tag in _PUNCT},
    "*": "ADV", "FW": "X", "NIL": "X",
    "ABL": "PRT", "ABN": "PRT", "ABX": "DET", "AP": "ADJ", "AP$": "PRT", "AP+AP": "ADJ", "AT": "DET",
    "BE": "VERB", "BED": "VERB", "BED*": "VERB", "BEDZ": "VERB", "BEDZ*": "VERB", "BEG": "VERB",
    "BEM": "VERB", "BEM*": "VERB", "BEN": "VERB", "BER": "VERB", "BER*": "VERB", "BEZ": "VERB",
    "BEZ*": "VERB",
    "CC": "CONJ", "CD": "NUM", "CD$": "NOUN", "CS": "ADP",
    "DO": "VERB", "DO*": "VERB", "DO+PPSS": "X", "DOD": "VERB", "DOD*": "VERB", "DOZ": "VERB",
    "DOZ*": "VERB",
    "DT": "DET", "DT$": "DET", "DT+BEZ": "PRT", "DT+MD": "PRT", "DTI": "DET", "DTS": "DET",
    "DTS+BEZ": "PRT", "DTX": "DET",
    "EX": "PRT", "EX+BEZ": "PRT", "EX+HVD": "PRT", "EX+HVZ": "PRT", "EX+MD": "PRT",
    "HV": "VERB", "HV*": "VERB", "HV+TO": "VERB", "HVD": "VERB", "HVD*": "VERB", "HVG": "VERB",
    "HVN": "VERB", "HVZ": "VERB", "HVZ*": "VERB",
    "IN": "ADP", "IN+IN": "ADP", "IN+PPO": "ADP",
    "JJ": "ADJ", "JJ$": "PRT", "JJ+JJ": "ADJ", "JJR": "ADJ", "JJR+CS": "ADJ", "JJS": "ADJ", "JJT": "ADJ",
    "MD": "VERB", "MD*": "VERB", "MD+HV": "VERB", "MD+PPSS": "VERB", "MD+TO": "VERB",
    "NN": "NOUN", "NN$": "NOUN", "NN+BEZ": "PRT", "NN+HVD": "PRT", "NN+HVZ": "PRT", "NN+IN": "NOUN",
    "NN+MD": "PRT", "NN+NN": "NOUN", "NNS": "NOUN", "NNS$": "NOUN", "NNS+MD": "PRT",
    "NP": "NOUN", "NP$": "NOUN", "NP+BEZ": "PRT", "NP+HVZ": "PRT", "NP+MD": "PRT", "NPS": "NOUN",
    "NPS$": "NOUN", "NR": "NOUN", "NR$": "NOUN", "NR+MD": "PRT", "NRS": "NOUN",
    "OD": "ADJ",
    "PN": "NOUN", "PN$": "NOUN", "PN+BEZ": "PRT", "PN+HVD": "PRT", "PN+HVZ": "PRT", "PN+MD": "PRT",
    "PP$": "DET", "PP$$": "PRON", "PPL": "PRON", "PPLS": "PRON", "PPO": "PRON", "PPS": "PRON",
    "PPS+BEZ": "PRT", "PPS+HVD": "PRT", "PPS+HVZ": "PRT", "PPS+MD": "PRT", "PPSS": "PRON",
    "PPSS+BEM": "PRT", "PPSS+BER": "PRT", "PPSS+BEZ": "PRT", "PPSS+BEZ*": "PRT", "PPSS+HV": "PRT",
    "PPSS+HVD": "PRT", "PPSS+MD": "PRT", "PPSS+VB": "PRT",
    "QL": "ADV", "QLP": "ADV",
    "RB": "ADV", "RB$": "PRT", "RB+BEZ": "PRT", "RB+CS": "ADV", "RBR": "ADV", "RBR+CS": "ADV",
    "RBT": "ADV", "RN": "ADV", "RP": "PRT", "RP+IN": "PRT",
    "TO": "PRT", "TO+VB": "PRT", "UH": "PRT",
    "VB": "VERB", "VB+AT": "VERB", "VB+IN": "VERB", "VB+JJ": "VERB", "VB+PPO": "VERB", "VB+RP": "VERB",
    "VB+TO": "VERB", "VB+VB": "VERB", "VBD": "VERB", "VBG": "VERB", "VBG+TO": "VERB", "VBN": "VERB",
    "VBN+TO": "VERB", "VBZ": "VERB",
    "WDT": "DET", "WDT+BER": "PRT", "WDT+BER+PP": "X", "WDT+BEZ": "PRT", "WDT+DO+PPS": "X",
    "WDT+DOD": "PRT", "WDT+HVZ": "PRT", "WP$": "DET", "WPO": "PRON", "WPS": "PRON", "WPS+BEZ": "PRT",
    "WPS+HVD": "PRT", "WPS+HVZ": "PRT", "WPS+MD": "PRT", "WQL": "ADV", "WRB": "ADV", "WRB+BER": "PRT",
    "WRB+BEZ": "PRT", "WRB+DO": "PRT", "WRB+DOD": "PRT", "WRB+DOD*": "PRT", "WRB+DOZ": "PRT",
    "WRB+IN": "PRT", "WRB+MD": "PRT",
}


def simplify_brown_tag(tag: str) -> str:
    """A raw Brown tag in the "brown" tag set (rules in the module docstring)."""
    tag = tag.upper()
    if tag.startswith("FW-"):
        return "FW"
    return _SUFFIXES.sub("", tag)  # "---HL" -> "--"


def brown_to_universal(tag: str) -> str:
    """A raw or simplified Brown tag as one of the 12 universal tags."""
    universal = BROWN_TO_UNIVERSAL.get(simplify_brown_tag(tag))
    if universal is None:
        raise UserError(f"Brown tag {tag!r} has no universal tag")
    return universal


def _reader(path: str | Path):
    """NLTK's categorized tagged-corpus reader over the zip, as nltk.corpus.brown builds it, once
    `_check_zip` has found the zip readable (NLTK reads lazily and would fail deep inside)."""
    from nltk import data as nltk_data
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    zip_path = Path(path).expanduser().resolve()
    if not zip_path.exists():
        raise UserError(f"Brown corpus zip not found: {zip_path}")
    if not zip_path.is_file():
        raise UserError(f"{zip_path} is a folder, not a zip file (expected NLTK's brown.zip)")
    if not zipfile.is_zipfile(zip_path):
        empty = " (it is empty)" if zip_path.stat().st_size == 0 else ""
        raise UserError(f"{zip_path} is not a zip file{empty} (expected NLTK's brown.zip)")
    _check_zip(zip_path)
    # Recent NLTK refuses to read files outside its data path (nltk.pathsec); the folder the user
    # pointed at is a data folder, so it joins the path.
    if str(zip_path.parent) not in map(str, nltk_data.path):
        nltk_data.path.append(str(zip_path.parent))
    root = nltk_data.ZipFilePathPointer(str(zip_path), _ZIP_ROOT)
    # UTF-8: NLTK's brown.zip is ASCII, which reads the same; a Brown-format zip of other text may not be
    return CategorizedTaggedCorpusReader(root, _FILEIDS, cat_file="cats.txt", encoding="utf-8")


def _check_zip(zip_path: Path) -> None:
    """Every corpus file and cats.txt can be read and is UTF-8 text, and each line of cats.txt
    names a corpus file of the zip and at least one genre; a one-line UserError otherwise."""
    cats, fileid = _ZIP_ROOT + "cats.txt", re.compile(_ZIP_ROOT + _FILEIDS + "$")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            if cats not in names:
                raise UserError(f"{zip_path} has no {cats}: not NLTK's brown.zip")
            members = [n for n in names if fileid.match(n)]
            texts = {n: _utf8(zip_path, n, _read_member(archive, zip_path, n)) for n in [cats, *members]}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise UserError(f"cannot read {zip_path} as a zip: {e}") from None
    known = {n.removeprefix(_ZIP_ROOT) for n in members}
    for k, line in enumerate(texts[cats].splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise UserError(f"{zip_path}: {cats}, line {k}: expected a file name and its genre, got {line.strip()!r}")
        if fields[0] not in known:
            raise UserError(f"{zip_path}: {cats}, line {k} names {fields[0]}, which the zip lacks (no "
                            f"{_ZIP_ROOT}{fields[0]} in it)")


def _read_member(archive: zipfile.ZipFile, zip_path: Path, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:  # bad CRC, truncated, odd method
        raise UserError(f"{zip_path}: cannot read {name} ({e}); the zip is damaged") from None


def _utf8(zip_path: Path, name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{zip_path}: {name}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}; NLTK's "
                        "brown.zip is ASCII)") from None


def brown_categories(path: str | Path) -> list[str]:
    """The corpus's genres as NLTK names them (adventure, belles_lettres, ..., science_fiction)."""
    return list(_reader(path).categories())


def _fileids(reader, path: str | Path, categories: list[str] | tuple[str, ...] | None) -> list[str]:
    if categories is None:
        return list(reader.fileids())
    if isinstance(categories, str):
        categories = [categories]
    known = reader.categories()
    unknown = [c for c in categories if c not in known]
    if not categories:
        raise UserError(f"an empty list of Brown categories selects nothing (known: {', '.join(known)})")
    if unknown:
        raise UserError(f"unknown Brown categories {unknown} in {path} (known: {', '.join(known)})")
    return list(reader.fileids(list(categories)))


def load_brown(path: str | Path, tagset: str = "universal",
               categories: list[str] | tuple[str, ...] | None = None) -> list[TaggedSentence]:
    """Brown's tagged sentences in corpus order (files ca01 ... cr09), from the given categories
    (None: all), tagged with `tagset` ("universal" or "brown", see the module docstring)."""
    if tagset not in TAGSETS:
        raise UserError(f"unknown Brown tag set {tagset!r} (choose {' or '.join(TAGSETS)})")
    to_tag = brown_to_universal if tagset == "universal" else simplify_brown_tag
    reader = _reader(path)
    sentences = []
    for fileid in _fileids(reader, path, categories):
        for k, pairs in enumerate(reader.tagged_sents(fileid), 1):
            for word, tag in pairs:
                if tag is None:
                    raise UserError(f"{path}: {fileid}, sentence {k}: token {word!r} has no /TAG")
            try:
                sentences.append(TaggedSentence([w for w, _ in pairs], [to_tag(t) for _, t in pairs]))
            except UserError as e:
                raise UserError(f"{path}: {fileid}, sentence {k}: {e}") from None
    return sentences


def brown_plain_sentences(path: str | Path, categories: list[str] | tuple[str, ...] | None = None) -> list[list[str]]:
    """Brown's sentences as words, tags stripped: unlabelled text, split into words as the tagged
    sentences are."""
    reader = _reader(path)
    return [list(words) for fileid in _fileids(reader, path, categories) for words in reader.sents(fileid)]
