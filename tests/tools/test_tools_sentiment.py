"""Headline sentiment: rule behaviour, as_of handling, and accuracy against gold labels."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from chainproof.tools.dossier import load_dossier
from chainproof.tools.sentiment import headline_sentiment, score_headline
from testkit.dossier_data import SYNTH_AS_OF

LABELS = {"0": "bearish", "1": "bullish", "2": "neutral"}


@pytest.mark.parametrize("text, label", [
    ("Best Buy stock price target raised to $105 from $86 at Oppenheimer", "bullish"),
    ("Acme price target cut to $40 from $55 at Jefferies", "bearish"),
    ("Acme downgraded to underweight at Morgan Stanley", "bearish"),
    ("Acme shares surge after earnings beat", "bullish"),
    ("$ACME +4.1% after Q3 beat-and-raise", "bullish"),
    ("Acme hit with lawsuit over toxic chemical contamination", "bearish"),
    ("Acme to present at investor conference", "neutral"),
    ("Central bank cuts interest rates again", "neutral"),
])
def test_rules(text, label):
    assert score_headline(text).label == label


def test_negation_weakens_and_reverses():
    plain, negated = score_headline("Acme downgraded"), score_headline("Acme not downgraded")
    assert plain.score < 0 < negated.score and abs(negated.score) < abs(plain.score)


def test_as_of_and_undated(make_dossier):
    s = headline_sentiment(load_dossier(make_dossier()), SYNTH_AS_OF)
    assert s.excluded_after_as_of == 1            # the 2021-07-01 headline
    assert s.n_scored == 3 and s.undated == 1
    assert (s.n_bullish, s.n_bearish, s.n_neutral) == (1, 1, 1)
    assert s.net_score == 0.0 and s.bullish_share == pytest.approx(1 / 3, abs=1e-6)
    assert any("undated" in n for n in s.notes) and any("after 2021-06-01 excluded" in n for n in s.notes)
    assert all(i.date is None or i.date <= SYNTH_AS_OF for i in s.items)


def _evaluate(rows: list[tuple[str, str]]) -> dict[str, float]:
    pred = [score_headline(t).label for t, _ in rows]
    gold = [g for _, g in rows]
    f1 = []
    for c in ("bullish", "bearish", "neutral"):
        tp = sum(p == g == c for p, g in zip(pred, gold))
        fp = sum(p == c != g for p, g in zip(pred, gold))
        fn = sum(g == c != p for p, g in zip(pred, gold))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    return {"accuracy": sum(p == g for p, g in zip(pred, gold)) / len(gold), "macro_f1": sum(f1) / 3,
            "majority_accuracy": majority, "majority_macro_f1": (2 * majority / (1 + majority)) / 3}


def test_accuracy_on_sent_valid(bundle_root):
    path = bundle_root / "news_sentiment/twitter_financial_news_sentiment/sent_valid.csv"
    rows = [(r["text"], LABELS[r["label"]]) for r in csv.DictReader(path.open(encoding="utf-8"))]
    m = _evaluate(rows)
    print(f"sent_valid n={len(rows)} {m}")
    # measured: accuracy 0.779 (majority 0.656), macro-F1 0.713 (majority 0.264)
    assert m["macro_f1"] >= 0.65 and m["macro_f1"] > m["majority_macro_f1"] + 0.35
    assert m["accuracy"] >= m["majority_accuracy"] + 0.08


def test_accuracy_on_target_company_subset(bundle_root):
    path = bundle_root / "news_sentiment/twitter_financial_news_sentiment/subset_mentions_of_12_target_companies.csv"
    rows = [(r["text"], r["label_name"]) for r in csv.DictReader(path.open(encoding="utf-8"))]
    m = _evaluate(rows)
    print(f"subset n={len(rows)} {m}")
    # measured: accuracy 0.699 (majority 0.625), macro-F1 0.634 (majority 0.256)
    assert m["macro_f1"] >= 0.55 and m["accuracy"] > m["majority_accuracy"] + 0.04
