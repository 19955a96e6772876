"""English words and sentences as FineWeb's filters count them (spaCy's English tokenizer and
sentencizer, which datatrove 0.10.1 runs): the expected tokens are spaCy 3.8's own output."""

from __future__ import annotations

import pytest

from minigpt_cli.stages.words import sentence_count, words

CASES = [
    ("Don't worry: it's 5km (3.1mi) from the U.S. border, e.g. near St. Paul's!",
     ["Do", "n't", "worry", ":", "it", "'s", "5", "km", "(", "3.1mi", ")", "from", "the",
      "U.S.", "border", ",", "e.g.", "near", "St.", "Paul", "'s", "!"]),
    ("Email petra.imhof@fu-berlin.de or see https://example.com/a?b=1, today.",
     ["Email", "petra.imhof@fu-berlin.de", "or", "see", "https://example.com/a?b=1", ",",
      "today", "."]),
    ("Prices start at $899.00... well-known brands -- i.e., cheap?!",
     ["Prices", "start", "at", "$", "899.00", "...", "well", "-", "known", "brands", "--",
      "i.e.", ",", "cheap", "?", "!"]),
    ('He said "wait." Then he left. Mr. Smith stayed... for 2 hours. OK? Yes!',
     ["He", "said", '"', "wait", ".", '"', "Then", "he", "left", ".", "Mr.", "Smith",
      "stayed", "...", "for", "2", "hours", ".", "OK", "?", "Yes", "!"]),
    ("The end.[1] Next one:) And the last :-) one.",
     ["The", "end.[1", "]", "Next", "one", ":)", "And", "the", "last", ":-)", "one", "."]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_words_split_punctuation_as_spacy_english(text, expected):
    assert words(text) == expected
    assert words("  \n".join([text, text])) == expected * 2  # whitespace is never a word


def test_sentences_end_at_marks_followed_by_a_word():
    assert sentence_count(CASES[3][0]) == 5  # "Mr." and "..." end none
    assert [sentence_count(t) for t, _ in CASES[:3]] == [1, 1, 1]  # "?!" at the end: one
    assert sentence_count("First one. Second one! Third?") == 3
    assert sentence_count("No mark at all") == 1 and sentence_count("  ") == 0
    assert sentence_count("Wait... what.") == 1  # an ellipsis is not a sentence end


def test_long_runs_of_affixes_split_one_by_one_as_spacy():
    # spaCy strips "(" and "!" one at a time; looking only at a chunk's tail for its suffix
    # keeps this linear (searching the whole chunk each time took minutes for 20k of them).
    assert words("(" * 5000 + "a") == ["("] * 5000 + ["a"]
    assert words("wow" + "!" * 5000) == ["wow"] + ["!"] * 5000
    assert words("x" + "." * 3000 + ")") == ["x", "." * 3000, ")"]  # a dot run is one suffix
