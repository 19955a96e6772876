"""Filter stages: each rule just either side of its threshold, real Common Crawl and FineWeb
documents, options validation, dedup and determinism."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from minigpt_cli import plugins
from minigpt_cli.documents import Document, Drop
from minigpt_cli.stages import default_stages
from minigpt_cli.stages.c4 import C4LineFilter
from minigpt_cli.stages.dedup import ExactDedup, MinHashDedup, normalize, normalized_bytes
from minigpt_cli.stages.gopher import GopherQuality, GopherRepetition
from minigpt_cli.stages.hashset import U64Set
from minigpt_cli.stages.head import Head
from minigpt_cli.stages.language import LanguageFilter
from minigpt_cli.stages.minhash import MinHasher

STAGES = ["language", "gopher_quality", "gopher_repetition", "c4", "exact_dedup",
          "minhash_dedup", "head"]

ENGLISH = (
    "The committee met on Tuesday to discuss the new budget for the city library. Members "
    "agreed that the reading rooms need better lighting and that the children's section "
    "should stay open later in the evening during the summer months."
)
GERMAN = (
    "Der Ausschuss traf sich am Dienstag, um den neuen Haushalt der Stadtbibliothek zu "
    "besprechen. Die Mitglieder waren sich einig, dass die Lesesäle eine bessere Beleuchtung "
    "brauchen und die Kinderabteilung im Sommer abends länger geöffnet bleiben sollte."
)
FRENCH = (
    "Le comité s'est réuni mardi pour discuter du nouveau budget de la bibliothèque "
    "municipale. Les membres ont convenu que les salles de lecture ont besoin d'un meilleur "
    "éclairage et que la section des enfants devrait rester ouverte plus tard le soir en été."
)


def doc(text: str, **meta) -> Document:
    return Document(text=text, meta=dict(meta))


def words(n: int, length: int, prefix: str = "w") -> list[str]:
    """``n`` distinct lowercase words of exactly ``length`` letters."""
    out = []
    for i in range(n):
        body, k = "", i
        for _ in range(length - 1):
            body = chr(ord("a") + k % 26) + body
            k //= 26
        out.append((prefix + body)[:length])
    assert len(set(out)) == n and all(len(w) == length for w in out)
    return out


def fineweb_texts(shared_data: Path) -> list[str]:
    path = shared_data / "fineweb" / "fineweb_subset_300.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def run(stages, docs):
    kept, reasons = [], {}
    for d in docs:
        for stage in stages:
            d = stage(d)
            if isinstance(d, Drop):
                reasons[d.reason] = reasons.get(d.reason, 0) + 1
                break
        else:
            kept.append(d)
    return kept, reasons


def recipe(source: str):
    return [plugins.load("stage", name)(plugins.load("stage", name).Options(**opts))
            for name, opts in default_stages(source)]


# --- registry and options -------------------------------------------------------------------

@pytest.mark.parametrize("name", STAGES)
def test_registered_stage_loads_and_rejects_unknown_options(name):
    cls = plugins.load("stage", name)
    assert cls.name == name
    assert cls.stateless is (name not in {"exact_dedup", "minhash_dedup", "head"})
    cls(cls.Options())  # defaults are valid
    with pytest.raises(ValidationError, match="no_such_option"):
        cls.Options(no_such_option=1)


def test_bad_option_values_are_pydantic_errors():
    with pytest.raises(ValidationError, match="not language codes"):
        LanguageFilter.Options(languages=["english!"])
    with pytest.raises(ValidationError):
        LanguageFilter.Options(min_score=1.5)
    with pytest.raises(ValidationError, match="at least 1"):
        GopherRepetition.Options(max_dup_ngram_fraction={0: 0.1})
    with pytest.raises(ValidationError):
        Head.Options(n=-1)
    assert GopherRepetition.Options(max_top_ngram_share={"2": 0.3}).max_top_ngram_share == {2: 0.3}


def test_default_recipe_is_fineweb_order_and_only_for_commoncrawl():
    names = [name for name, _ in default_stages("commoncrawl")]
    assert names == ["language", "gopher_repetition", "gopher_quality", "c4", "exact_dedup",
                     "minhash_dedup"]
    assert dict(default_stages("commoncrawl"))["c4"] == {"terminal_punctuation": False}
    assert default_stages("text") == [] and default_stages("fineweb") == []
    assert len(recipe("commoncrawl")) == 6


@pytest.mark.parametrize("name", ["language", "gopher_quality", "gopher_repetition", "c4"])
def test_stateless_stages_pickle_for_worker_processes(name):
    cls = plugins.load("stage", name)
    stage = cls(cls.Options())
    first = stage(doc(ENGLISH * 30))
    copy = pickle.loads(pickle.dumps(stage))  # after first use: the model is not pickled
    again = copy(doc(ENGLISH * 30))
    assert type(first) is type(again)
    if isinstance(first, Drop):
        assert first == again


# --- language -------------------------------------------------------------------------------

def test_language_keeps_english_and_drops_german_and_french():
    stage = LanguageFilter(LanguageFilter.Options())
    kept = stage(doc(ENGLISH))
    assert isinstance(kept, Document)
    assert kept.meta["language"] == "en" and kept.meta["language_score"] >= 0.65
    for text, code in ((GERMAN, "de"), (FRENCH, "fr")):
        d = doc(text)
        assert stage(d) == Drop("language:other")
        assert d.meta["language"] == code and d.meta["language_score"] > 0.8
    german = LanguageFilter(LanguageFilter.Options(languages=["DE", "fr"]))
    assert isinstance(german(doc(GERMAN)), Document) and isinstance(german(doc(FRENCH)), Document)
    assert german(doc(ENGLISH)) == Drop("language:other")


def test_language_score_threshold_either_side():
    text = "Thanks, see you soon"
    probe = doc(text)
    LanguageFilter(LanguageFilter.Options(min_score=0.0))(probe)
    assert probe.meta["language"] == "en"
    score = probe.meta["language_score"]  # rounded to 4 places
    below = LanguageFilter(LanguageFilter.Options(min_score=score - 1e-4))
    above = LanguageFilter(LanguageFilter.Options(min_score=min(score + 1e-4, 1.0)))
    assert isinstance(below(doc(text)), Document)
    assert above(doc(text)) == Drop("language:low_score")


def test_language_max_chars_classifies_a_prefix():
    text = ENGLISH + "\n" + (GERMAN + " ") * 5
    assert LanguageFilter(LanguageFilter.Options())(doc(text)) == Drop("language:other")
    prefix = LanguageFilter(LanguageFilter.Options(max_chars=len(ENGLISH)))
    assert isinstance(prefix(doc(text)), Document)


def test_language_keeps_the_source_language_header():
    d = doc(ENGLISH, language="eng")
    LanguageFilter(LanguageFilter.Options())(d)
    assert d.meta["source_language"] == "eng" and d.meta["language"] == "en"


# --- Gopher quality -------------------------------------------------------------------------

def quality(**options) -> GopherQuality:
    return GopherQuality(GopherQuality.Options(**options))


def three_letter_text(n: int = 50) -> list[str]:
    """``n`` three-letter words, two of them stop words: passes every quality rule."""
    return ["the", "and"] + words(n - 2, 3, prefix="q")


def test_quality_clean_text_passes_and_word_count_bounds():
    q = quality()
    assert q.failed_rule(" ".join(three_letter_text(50))) is None
    assert q.failed_rule(" ".join(three_letter_text(49))) == "word_count"
    many = (["the", "and", "cat"] * 33334)[:100_000]
    assert q.failed_rule(" ".join(many)) is None
    assert q.failed_rule(" ".join(many + ["dog"])) == "word_count"
    assert quality(min_words=3).failed_rule("the and cat") is None
    assert q(doc("the and cat")) == Drop("gopher_quality:word_count")


def test_quality_mean_word_length_bounds():
    q = quality()
    ws = three_letter_text()
    assert q.failed_rule(" ".join(ws)) is None  # mean exactly 3
    assert q.failed_rule(" ".join(["an"] + ws[1:])) == "mean_word_length"  # 2.98 (no "the")
    # 2 stop words + 14 words of 11 letters + 34 of 10: mean exactly 10.0. Edge punctuation
    # does not count ("word." is 4 letters), punctuation-only tokens are not words.
    long = ["the", "and"] + words(14, 11, "x") + words(34, 10, "y")
    long[-1] += "."
    assert q.failed_rule(" ".join(long)) is None
    assert q.failed_rule(" ".join(long + ["--"])) is None
    assert q.failed_rule(" ".join(long[:-1] + [long[-1][:-1] + "zz"])) == "mean_word_length"


def test_quality_symbol_word_ratio_hash_and_ellipsis():
    q = quality()
    ws = three_letter_text()  # 50 words: at most 5 '#' and 5 ellipses
    tagged = ["#" + w for w in ws[2:7]] + ws[:2] + ws[7:]
    assert q.failed_rule(" ".join(tagged)) is None
    tagged[7] = "#" + tagged[7]
    assert q.failed_rule(" ".join(tagged)) == "symbol_word_ratio"
    dotted = [w + "..." for w in ws[2:7]] + ws[:2] + ws[7:]
    assert q.failed_rule(" ".join(dotted)) is None
    dotted[7] += "…"
    assert q.failed_rule(" ".join(dotted)) == "symbol_word_ratio"


def test_quality_bullet_and_ellipsis_lines():
    q = quality()
    ws = three_letter_text(60)
    lines = [" ".join(ws[i : i + 6]) for i in range(0, 60, 6)]  # 10 lines
    bullets = ["- " + line for line in lines[:9]] + lines[9:]
    assert q.failed_rule("\n".join(bullets)) is None  # 0.9
    assert q.failed_rule("\n".join(["- " + line for line in lines])) == "bullet_lines"
    # "•" is not in datatrove's punctuation set: as a token it is a 1-letter word, so ten "• "
    # bullets pull the mean word length under 3 before the bullet rule is reached.
    assert q.failed_rule("\n".join(["• " + line for line in lines])) == "mean_word_length"
    assert quality(min_mean_word_length=0).failed_rule(
        "\n".join(["• " + line for line in lines])) == "bullet_lines"
    trailing = [line + "..." for line in lines[:3]] + lines[3:]
    assert q.failed_rule("\n".join(trailing)) is None  # 0.3
    trailing[3] += "…"
    assert q.failed_rule("\n".join(trailing)) == "ellipsis_lines"


def test_quality_alphabetic_words_and_stop_words():
    q = quality()
    ws = three_letter_text()
    numbers = ws[:40] + [f"19{i:02d}" for i in range(10)]  # 40 of 50 words have a letter
    assert q.failed_rule(" ".join(numbers)) is None
    assert q.failed_rule(" ".join(numbers[:39] + ["1999"] + numbers[40:])) == "alpha_words"
    assert q.failed_rule(" ".join(["the,", "(and"] + ws[2:])) is None  # punctuation split off
    assert q.failed_rule(" ".join(["The", "AND"] + ws[2:])) == "stop_words"  # case-sensitive
    assert q.failed_rule(" ".join(["the", "the"] + ws[2:])) == "stop_words"  # one distinct
    assert q.failed_rule(" ".join(["them", "android"] + ws[2:])) == "stop_words"  # whole words
    assert quality(min_stop_words=1).failed_rule(" ".join(["the", "the"] + ws[2:])) is None


# --- Gopher repetition ----------------------------------------------------------------------

NO_NGRAMS = {"max_top_ngram_share": {}, "max_dup_ngram_fraction": {}}
NO_LINES = {"max_dup_line_fraction": 1.0, "max_dup_line_char_fraction": 1.0,
            "max_dup_paragraph_fraction": 1.0, "max_dup_paragraph_char_fraction": 1.0}


def repetition(**options) -> GopherRepetition:
    return GopherRepetition(GopherRepetition.Options(**options))


def test_repetition_duplicate_line_fraction():
    r = repetition(max_dup_line_char_fraction=1.0, **NO_NGRAMS)
    distinct = words(7, 30, "l")
    three = "\n".join(distinct + ["same line"] * 4)  # 3 of 10 lines repeat an earlier one
    assert r.failed_rule(three) is None
    four = "\n".join(distinct[:6] + ["same line"] * 5)  # 4 of 11
    assert r.failed_rule(four) == "dup_line_fraction"
    assert r(doc(four)) == Drop("gopher_repetition:dup_line_fraction")


def test_repetition_duplicate_line_char_fraction():
    r = repetition(**NO_NGRAMS)
    unique = words(3, 30, "u")
    # 3 x 30 unique chars + a 30-char line twice: 30 of 150 characters repeat = 0.2
    assert r.failed_rule("\n".join(unique + ["d" * 30, "d" * 30])) is None
    assert r.failed_rule("\n".join(unique + ["d" * 31, "d" * 31])) == "dup_line_char_fraction"


def test_repetition_duplicate_paragraphs():
    r = repetition(max_dup_line_fraction=1.0, max_dup_line_char_fraction=1.0, **NO_NGRAMS)
    paragraphs = ["line one of a paragraph\n" + w for w in words(7, 40, "p")]
    ok = "\n\n".join(paragraphs + ["short"] * 4)  # 3 of 10 repeat, few characters
    assert r.failed_rule(ok) is None
    assert r.failed_rule("\n\n".join(paragraphs + ["short"] * 5)) == "dup_paragraph_fraction"
    unique = words(3, 30, "u")
    assert r.failed_rule("\n \n".join(unique + ["e" * 30] * 2)) is None  # 0.2 of characters
    assert r.failed_rule("\n\n".join(unique + ["e" * 31] * 2)) == "dup_paragraph_char_fraction"


def filler(chars: int, prefix: str) -> list[str]:
    """Distinct words adding up to exactly ``chars`` characters."""
    out = words(chars // 5 - 1, 5, prefix)
    rest = chars - 5 * len(out)
    return out + [prefix.upper() * rest]


@pytest.mark.parametrize(("n", "width", "total"), [(2, 5, 100), (3, 6, 200), (4, 4, 200)])
def test_repetition_top_ngram_share(n, width, total):
    limit = {2: 0.20, 3: 0.18, 4: 0.16}[n]
    r = repetition(max_top_ngram_share={n: limit}, max_dup_ngram_fraction={}, **NO_LINES)
    gram = words(n, width, "g")
    # the n-gram twice: 2 * n * width characters of ``total``, exactly the limit
    def text(total_chars):
        rest = filler(total_chars - 2 * n * width, "f")
        half = len(rest) // 2
        return " ".join(gram + rest[:half] + gram + rest[half:])
    assert r.failed_rule(text(total)) is None
    assert r.failed_rule(text(total - 1)) == f"top_{n}gram"


@pytest.mark.parametrize(("n", "width", "total"), [
    (5, 3, 100), (6, 7, 300), (7, 13, 700), (8, 3, 200), (9, 11, 900), (10, 3, 300),
])
def test_repetition_duplicate_ngram_fraction(n, width, total):
    limit = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}[n]
    r = repetition(max_top_ngram_share={}, max_dup_ngram_fraction={n: limit}, **NO_LINES)
    gram = words(n, width, "g")
    def text(total_chars):  # the second copy's n * width characters are the duplicates
        rest = filler(total_chars - 2 * n * width, "f")
        return " ".join(gram + rest[:3] + gram + rest[3:])
    assert r.failed_rule(text(total)) is None  # n * width of ``total``: exactly the limit
    assert r.failed_rule(text(total - 1)) == f"dup_{n}gram"


def test_repetition_defaults_check_every_ngram_size():
    r = repetition(**NO_LINES)
    gram = words(12, 5, "g")  # a repeated 12-gram: the same fraction for n = 5..10
    rest = filler(600 - 120, "f")  # 60 duplicate characters of 600 (0.10 passes)
    assert r.failed_rule(" ".join(gram + rest[:5] + gram + rest[5:])) is None
    rest = filler(570 - 120, "f")  # 60 of 570 = 0.105: passes n = 5..9, fails n = 10
    assert r.failed_rule(" ".join(gram + rest[:5] + gram + rest[5:])) == "dup_10gram"
    rest = filler(375 - 120, "f")  # 60 of 375 = 0.16: fails at n = 5 already
    assert r.failed_rule(" ".join(gram + rest[:5] + gram + rest[5:])) == "dup_5gram"


def test_repetition_real_text_and_its_repeats(shared_data):
    text = fineweb_texts(shared_data)[0]
    r = GopherRepetition(GopherRepetition.Options())
    assert r.failed_rule(text) is None
    assert r.failed_rule(text + "\n" + text) is not None


# --- C4 -------------------------------------------------------------------------------------

C4_PAGE = """Welcome to the site
This first line is a proper sentence.
Please enable JavaScript in your browser to see this page.
Short line here.

We use cookies to improve your experience on our website.
Read our privacy policy for more details about your data.
The second paragraph starts here and ends well!
Is this the third sentence of the page?
Share on Facebook"""


def test_c4_rewrites_lines_and_keeps_paragraphs():
    c4 = C4LineFilter(C4LineFilter.Options())
    page = doc(C4_PAGE, url="u")
    out = c4(page)
    assert isinstance(out, Document) and out is not page and out.meta == {"url": "u"}
    assert page.text == C4_PAGE  # the input is not mutated: the pipeline sees the rewrite
    assert out.text == (
        "This first line is a proper sentence.\n\n"
        "The second paragraph starts here and ends well!\n"
        "Is this the third sentence of the page?"
    )


def test_c4_line_rules_either_side():
    sentences = "One two three four five. Six seven eight nine ten. Eleven twelve 13 14 15."
    c4 = C4LineFilter(C4LineFilter.Options())
    clean = doc(sentences)
    assert c4(clean) is clean  # 3 sentences on one line: nothing to rewrite
    assert c4(doc("One two three four five. Six seven eight nine ten.")) == Drop(
        "c4:too_few_sentences")
    four_words = sentences + "\nOne two three four."
    assert c4(doc(four_words)).text == sentences
    assert c4(doc(sentences + "\nOne two three four five!")).text.endswith("four five!")
    assert c4(doc(sentences + '\nHe said "one two three four"')).text.endswith('four"')
    assert c4(doc(sentences + "\nno terminal punctuation in this line")).text == sentences
    relaxed = C4LineFilter(C4LineFilter.Options(terminal_punctuation=False))
    assert relaxed(doc(sentences + "\nno terminal punctuation in this line")).text.endswith("line")
    assert c4(doc("Menu\nHome\nAbout us")) == Drop("c4:no_lines_left")


def test_c4_page_rules_and_switches():
    base = "One two three four five. Six seven eight nine ten. Eleven twelve 13 14 15."
    c4 = C4LineFilter(C4LineFilter.Options())
    assert c4(doc(base + "\nLorem Ipsum dolor sit amet, consectetur.")) == Drop("c4:lorem_ipsum")
    assert c4(doc(base + "\nCall it as f() { return 1; } in your code.")) == Drop(
        "c4:curly_bracket")
    # As in datatrove, a page rule only fires on a line the line rules kept: no terminal
    # punctuation, so the line goes and the page stays.
    assert c4(doc(base + "\nfunction f() { return 1; }")).text == base
    off = C4LineFilter(C4LineFilter.Options(drop_curly_bracket=False, drop_lorem_ipsum=False,
                                            drop_javascript_lines=False,
                                            drop_policy_lines=False))
    extra = "\nThis page needs javascript to work well.\nThis site uses cookies for all users."
    assert off(doc(base + extra)).text == base + extra
    assert c4(doc(base + extra)).text == base
    assert isinstance(off(doc(base + " {curly} lorem ipsum.")), Document)


# --- dedup ----------------------------------------------------------------------------------

def test_normalize_folds_case_space_punctuation_and_digits():
    assert normalize("  Hello,\tWORLD!!  Page 12 of 30_x ") == "hello world page 00 of 00 x"
    assert normalize("Ünïcode — “quotes” ５") == "ünïcode quotes 0"  # NFKC: fullwidth 5
    assert normalized_bytes("Ünïcode") == "ünïcode".encode()


def test_exact_dedup_whitespace_and_case_variants():
    stage = ExactDedup(ExactDedup.Options())
    original = "The quick brown fox.\nIt jumps over 3 lazy dogs!"
    assert stage(doc(original)).text == original
    for variant in ("the  quick brown FOX\n\nit jumps over 3 lazy dogs",
                    "The quick, brown fox. It jumps over 7 lazy dogs.",
                    "  THE QUICK BROWN FOX IT JUMPS OVER 3 LAZY DOGS  "):
        assert stage(doc(variant)) == Drop("exact_dedup:duplicate")
    assert isinstance(stage(doc("The quick brown fox. It jumps over lazy dogs!")), Document)
    assert len(stage.seen) == 2


def edited(text: str, every: int) -> str:
    """A light edit: every ``every``-th word replaced."""
    ws = text.split()
    return " ".join("EDITED" if i % every == 0 else w for i, w in enumerate(ws))


def test_minhash_catches_a_lightly_edited_copy_not_a_different_document(shared_data):
    texts = fineweb_texts(shared_data)
    stage = MinHashDedup(MinHashDedup.Options())
    assert all(isinstance(stage(doc(t)), Document) for t in texts)  # 300 different documents
    long = [t for t in texts if len(t.split()) > 300]  # 143 of them
    # 1% of words replaced (Jaccard of 5-gram shingles ~0.9): every copy is caught. (Observed:
    # 2.5% replaced, Jaccard ~0.78, catches 127 of 143; 5% replaced catches 37.)
    assert all(stage(doc(edited(t, 100))) == Drop("minhash_dedup:near_duplicate") for t in long)
    assert stage(doc(texts[0].upper())) == Drop("minhash_dedup:near_duplicate")


def test_minhash_signature_estimates_jaccard():
    hasher = MinHasher(num_perm=112, ngram=5, seed=1)
    rng = np.random.default_rng(0)
    vocab = words(3000, 6, "v")
    for rate in (0.02, 0.08, 0.3):
        a = [vocab[i] for i in rng.integers(0, 3000, 500)]
        b = [vocab[rng.integers(0, 3000)] if rng.random() < rate else w for w in a]
        sa = set(hasher.shingles(" ".join(a).encode()).tolist())
        sb = set(hasher.shingles(" ".join(b).encode()).tolist())
        jaccard = len(sa & sb) / len(sa | sb)
        same = hasher.signature(" ".join(a).encode()) == hasher.signature(" ".join(b).encode())
        assert abs(same.mean() - jaccard) < 0.15  # sd sqrt(J(1-J)/112) <= 0.05


SIGNATURE_SCRIPT = (
    "from minigpt_cli.stages.dedup import normalized_bytes, MinHashDedup;"
    "s = MinHashDedup(MinHashDedup.Options());"
    "sig = s.hasher.signature(normalized_bytes(open(0).read()));"
    "print(s.hasher.band_keys(sig, 14, 8).tolist())"
)


def test_minhash_is_deterministic_across_processes(shared_data):
    text = fineweb_texts(shared_data)[3]
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", SIGNATURE_SCRIPT], input=text, env=env,
                             capture_output=True, text=True, check=True).stdout
        outs.add(out)
    assert len(outs) == 1
    local = MinHashDedup(MinHashDedup.Options())
    sig = local.hasher.signature(normalized_bytes(text))
    assert outs.pop().strip() == str(local.hasher.band_keys(sig, 14, 8).tolist())
    reseeded = MinHashDedup(MinHashDedup.Options(seed=2))
    assert not np.array_equal(reseeded.hasher.signature(normalized_bytes(text)), sig)


def test_u64set_matches_a_python_set_through_growth():
    rng = np.random.default_rng(0)
    table, reference = U64Set(capacity=16), set()
    for size in [3, 14, 200, 5, 1000, 14, 64, 65]:
        keys = rng.integers(0, 3000, size=size, dtype=np.uint64)
        found = table.add(keys)
        expected = []
        for k in keys.tolist():
            k = k or 1  # 0 marks empty slots: stored as 1
            expected.append(k in reference)
            reference.add(k)
        assert found.tolist() == expected
    assert len(table) == len(reference)
    assert table.nbytes <= 32 * 4 * len(reference)


# --- head -----------------------------------------------------------------------------------

def test_head_keeps_the_first_n():
    head = Head(Head.Options(n=2))
    out = [head(doc(str(i))) for i in range(4)]
    assert [o.text for o in out[:2]] == ["0", "1"]
    assert out[2:] == [Drop("head:limit")] * 2 and head.exhausted
    assert Head(Head.Options(n=0))(doc("x")) == Drop("head:limit")


# --- real data through the default recipe ---------------------------------------------------

def test_fineweb_documents_mostly_pass_the_default_recipe(shared_data):
    texts = fineweb_texts(shared_data)
    kept, reasons = run(recipe("commoncrawl"), [doc(t) for t in texts])
    # FineWeb already passed FineWeb's filters, yet datatrove 0.10.1's own GopherQualityFilter
    # drops 50 of these 300 (46 at the alpha rule, which counts punctuation tokens as words):
    # minigpt decides as it does (247 of 300 kept by the whole recipe).
    assert len(kept) >= 0.8 * len(texts), reasons
    assert all(d.meta["language"] == "en" for d in kept)
    again, reasons_again = run(recipe("commoncrawl"), [doc(t) for t in texts])
    assert [d.text for d in again] == [d.text for d in kept] and reasons_again == reasons


def test_quality_and_c4_decide_as_datatrove_on_real_pages(shared_data):
    """The drop counts datatrove 0.10.1's GopherQualityFilter and C4QualityFilter (FineWeb's
    settings) give on the same real pages, measured with datatrove itself."""
    from minigpt_cli.sources.commoncrawl import CommonCrawlSource

    cc = [d.text for d in CommonCrawlSource({"inputs": [str(shared_data / "commoncrawl")]})
          .documents()]
    fw = fineweb_texts(shared_data)
    gq = GopherQuality(GopherQuality.Options())

    def reasons(stage, texts):
        _, why = run([stage], [doc(t) for t in texts])
        return why

    assert reasons(gq, fw) == {"gopher_quality:alpha_words": 46,
                               "gopher_quality:ellipsis_lines": 3,
                               "gopher_quality:word_count": 1}
    assert reasons(gq, cc) == {"gopher_quality:alpha_words": 12,
                               "gopher_quality:stop_words": 2}
    fineweb_c4 = dict(min_words_per_line=3, min_sentences=5)
    c4 = C4LineFilter(C4LineFilter.Options(terminal_punctuation=False, **fineweb_c4))
    assert reasons(c4, cc) == {"c4:curly_bracket": 1}
    assert reasons(c4, fw) == {"c4:too_few_sentences": 1}
    strict = C4LineFilter(C4LineFilter.Options(**fineweb_c4))  # datatrove: 11 too few sentences
    why = reasons(strict, cc)
    assert why.get("c4:too_few_sentences", 0) + why.get("c4:no_lines_left", 0) == 11, why


def test_common_crawl_wet_samples_through_the_default_recipe(shared_data):
    from minigpt_cli.sources.commoncrawl import CommonCrawlSource

    source = CommonCrawlSource({"inputs": [str(shared_data / "commoncrawl")]})
    docs = list(source.documents())
    assert len(docs) == 29
    kept, reasons = run(recipe("commoncrawl"), docs)
    # observed: 16 of 29 kept; the Aragonese Wikipedia page goes at language id
    assert 10 <= len(kept) <= 22, reasons
    assert reasons.get("language:other", 0) + reasons.get("language:low_score", 0) >= 2
    aragonese = next(d for d in docs if "an.wikipedia.org" in (d.meta.get("url") or ""))
    assert aragonese.meta["source_language"] == "spa" and aragonese.meta["language"] != "en"
    assert all(d.meta["language"] == "en" and d.meta["language_score"] >= 0.65 for d in kept)
    assert all("{" not in d.text for d in kept)


def test_shard_pipeline_dedups_the_text_c4_rewrote(tmp_path):
    """Through `minigpt shard` with worker processes: two pages that differ only in cookie
    boilerplate are one page after c4, and exact_dedup (in the main process) sees that."""
    from typer.testing import CliRunner

    from minigpt_cli.cli import app

    body = "One two three four five. Six seven eight nine ten. Eleven twelve 13 14 15."
    pages = [body + "\nWe use cookies on this site, see our cookie policy.",
             "This site uses cookies to track every visitor you see.\n" + body,
             "A different page entirely, with its own words. It has three sentences too. Yes it does."]
    src = tmp_path / "pages.jsonl"
    src.write_text("".join(json.dumps({"text": p}) + "\n" for p in pages))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["shard", "jsonl", str(src), "--out", str(out),
                                      "--stage", "c4", "--stage", "exact_dedup",
                                      "--workers", "2", "--shard-size", "1000"])
    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads((out / "manifest.json").read_text())["stages"]}
    assert stages["c4"]["modified"] == 2
    assert stages["exact_dedup"]["dropped"] == {"exact_dedup:duplicate": 1}
    assert stages["exact_dedup"]["kept"] == 2
