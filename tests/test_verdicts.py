"""A job's part replays the stateless stages' verdicts its signature pass recorded
(sharding/verdicts.py): the same batch results as running every stage, on real WET pages."""

from __future__ import annotations

import numpy as np
import pytest

from minigpt_cli.documents import Document
from minigpt_cli.errors import MinigptError
from minigpt_cli.sharding.chain import WorkerChain, build_stage
from minigpt_cli.sharding.config import StageSpec
from minigpt_cli.sharding.verdicts import KEPT, Recorder, Verdict, Verdicts
from minigpt_cli.sources.commoncrawl import CommonCrawlOptions, CommonCrawlSource
from minigpt_cli.tokenizer import GPT2Tokenizer

PREFIX = ["language", "gopher_repetition", "gopher_quality", "c4"]


@pytest.fixture(scope="module")
def pages(shared_data) -> list[Document]:
    src = CommonCrawlSource(CommonCrawlOptions(inputs=[str(shared_data / "commoncrawl")]))
    return list(src.documents())


def recorded(pages: list[Document]) -> Verdicts:
    specs = [StageSpec(name=n) for n in PREFIX]
    rec = Recorder(PREFIX, [build_stage(s) for s in specs])
    for d in pages:
        rec.run(Document(d.text, d.id, d.source, dict(d.meta)))
    return Verdicts(rec.arrays(list(range(10, 10 + len(pages)))))


def test_replayed_verdicts_give_the_batch_result_of_running_every_stage(pages):
    specs = [StageSpec(name=n) for n in PREFIX + ["exact_dedup"]]
    chain = WorkerChain(specs, GPT2Tokenizer())
    table = recorded(pages)
    verdicts = table.of(list(range(10, 10 + len(pages))))
    counts: dict[tuple[int, str], int] = {}
    for v in verdicts:
        counts[v.stage, v.reason] = counts.get((v.stage, v.reason), 0) + 1
    assert counts == {(0, "language:other"): 2, (0, "language:low_score"): 1,
                      (1, "gopher_repetition:dup_5gram"): 1,
                      (1, "gopher_repetition:dup_line_char_fraction"): 1,
                      (2, "gopher_quality:alpha_words"): 10, (3, "c4:too_few_sentences"): 5,
                      (KEPT, ""): 9}
    assert all(v.touched & 1 for v in verdicts if v.stage == KEPT)  # language sets meta
    assert not any(v.touched & 0b110 for v in verdicts)  # the Gopher stages never touch
    fresh = lambda: [Document(d.text, d.id, d.source, dict(d.meta)) for d in pages]  # noqa: E731
    full, replayed = chain.run(fresh()), chain.run(fresh(), verdicts)
    assert replayed.drops == full.drops and replayed.modified == full.modified
    assert np.array_equal(replayed.tokens, full.tokens)
    assert np.array_equal(replayed.lengths, full.lengths)
    assert {i: {s: (d.text, d.meta) for s, d in snap.items()}
            for i, snap in replayed.snapshots.items()} == \
        {i: {s: (d.text, d.meta) for s, d in snap.items()} for i, snap in full.snapshots.items()}


def test_unknown_ids_run_every_stage_and_a_changed_mind_is_an_error(pages):
    table = recorded(pages)
    assert table.of([9, 10, 10 + len(pages)])[0] is None
    assert table.of([9, 10, 10 + len(pages)])[2] is None
    chain = WorkerChain([StageSpec(name=n) for n in PREFIX], GPT2Tokenizer())
    dropped = next(i for i, v in enumerate(table.of(list(range(10, 10 + len(pages)))))
                   if v.stage == 2)
    lying = Verdict(KEPT, "", touched=0b0100, modified=0, upto=4)  # "quality kept it"
    with pytest.raises(MinigptError, match="'gopher_quality' dropped a document"):
        chain.run([pages[dropped]], [lying])
