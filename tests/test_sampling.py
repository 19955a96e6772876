"""Generation: the KV cache changes nothing but speed; sampling knobs do what they say."""

import math

import pytest
import torch

from minigpt_cli.generation import SamplingParams, filter_logits, generate
from minigpt_cli.model import GPT, preset_config

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny(preset: str = "nano", seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(preset_config(preset, vocab_size=overrides.pop("vocab_size", 211),
                             **overrides)).eval()


def run(model, prompt, num_samples=1, seed=None, eot_id=None, use_cache=True, **params):
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    steps = list(generate(model, prompt, SamplingParams(**params), num_samples, gen, eot_id,
                          use_cache=use_cache))
    return torch.stack(steps, dim=1)  # (num_samples, steps)


@torch.no_grad()
def greedy_by_recomputing(model: GPT, prompt: list[int], n: int) -> list[int]:
    """nanoGPT's loop: the whole (cropped) sequence through the model for every new token."""
    idx = torch.tensor([prompt])
    for _ in range(n):
        logits, _ = model(idx[:, -model.config.block_size:])  # no cache, every position
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx[0, len(prompt):].tolist()


@pytest.mark.parametrize("preset,prompt_len,new", [
    ("nano", 1, 30), ("nano", 17, 40), ("micro", 9, 50),
    ("nano", 50, 60),  # runs past block_size 64: the loop switches to recomputing
    ("micro", 127, 5),  # prompt fills the context but one position
])
def test_greedy_with_cache_equals_recomputing_each_step(preset, prompt_len, new):
    model = tiny(preset)
    prompt = torch.randint(0, 211, (prompt_len,), generator=torch.Generator().manual_seed(1))
    prompt = prompt.tolist()
    cached = run(model, prompt, temperature=0.0, max_new_tokens=new)[0].tolist()
    assert cached == greedy_by_recomputing(model, prompt, new)
    assert len(cached) == new


def test_sampled_batch_with_cache_equals_without():
    model = tiny("micro")
    kw = dict(num_samples=4, seed=3, temperature=1.0, top_k=50, max_new_tokens=140)  # > block
    cached, recomputed = run(model, [5, 6, 7], **kw), run(model, [5, 6, 7], use_cache=False, **kw)
    assert cached.shape == (4, 140)
    assert torch.equal(cached, recomputed)
    assert len({tuple(r) for r in cached.tolist()}) == 4  # the samples differ from each other


def test_same_seed_same_samples_other_seed_differs():
    model = tiny()
    kw = dict(num_samples=3, temperature=1.0, top_p=0.9, max_new_tokens=25)
    a, b, c = run(model, [1, 2], seed=7, **kw), run(model, [1, 2], seed=7, **kw), \
        run(model, [1, 2], seed=8, **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_top_k_1_is_greedy():
    model = tiny("micro")
    greedy = run(model, [3, 1, 4], temperature=0.0, max_new_tokens=30)
    top1 = run(model, [3, 1, 4], seed=0, temperature=1.3, top_k=1, max_new_tokens=30)
    assert torch.equal(greedy, top1)


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    probs = torch.tensor([[0.15, 0.50, 0.05, 0.30]])  # likeliest first: 1, 3, 0, 2
    logits = probs.log()

    def kept(top_p):
        return torch.isfinite(filter_logits(logits, None, top_p))[0].nonzero().flatten()

    assert kept(0.4).tolist() == [1]  # 0.50 reaches 0.4
    assert kept(0.75).tolist() == [1, 3]  # 0.50 + 0.30 reaches 0.75; 0.50 alone does not
    assert kept(0.9).tolist() == [0, 1, 3]
    assert kept(0.99).tolist() == [0, 1, 2, 3]
    assert kept(1e-6).tolist() == [1]  # the likeliest token always stays
    assert kept(1.0).tolist() == [0, 1, 2, 3]
    # kept logits are untouched, and top-k composes with it (rows handled independently)
    both = filter_logits(torch.cat([logits, logits.flip(-1)]), 2, 0.99)
    assert torch.isfinite(both).sum(-1).tolist() == [2, 2]
    assert both[0, 1] == logits[0, 1] and both[1, 0] == logits[0, 3]


def test_padded_vocab_ids_are_never_sampled():
    model = tiny(vocab_size=100, pad_vocab_to=64)
    assert model.transformer.wte.weight.shape[0] == 128
    with torch.no_grad():  # make the padding rows the likeliest by far, were they predicted
        model.transformer.wte.weight[100:] = 5.0
    for params in (dict(temperature=0.0), dict(temperature=2.0), dict(temperature=1.0, top_k=5)):
        out = run(model, [1, 2, 3], num_samples=8, seed=0, max_new_tokens=40, **params)
        assert int(out.max()) < 100


def test_each_sample_stops_at_end_of_text_and_generation_ends_with_the_last():
    model = tiny(vocab_size=8)
    eot = 7
    out = run(model, [1, 2], num_samples=6, seed=5, eot_id=eot, temperature=1.5,
              max_new_tokens=500)
    firsts = []
    for row in out.tolist():
        first = row.index(eot)  # every sample reached end-of-text ...
        assert all(t == eot for t in row[first:])  # ... and stays there
        firsts.append(first)
    assert out.size(1) == max(firsts) + 1 < 500  # stops once the last sample is done
    assert len(set(firsts)) > 1  # samples finished at different steps


def test_chunked_prefill_after_a_prefix_equals_a_full_forward():
    model = tiny("micro")
    idx = torch.randint(0, 211, (2, 23), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full, _ = model(idx)  # (2, 23, V)
        cache = model.new_cache(2, 30)
        parts = [model(idx[:, a:b], cache=cache)[0] for a, b in ((0, 5), (5, 12), (12, 13),
                                                                (13, 23))]
    assert cache.length == 23
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # last_only with a cache: the final position's logits
        cache = model.new_cache(2, 30)
        model(idx[:, :10], cache=cache)
        last, _ = model(idx[:, 10:23], cache=cache, last_only=True)
    torch.testing.assert_close(last[:, 0], full[:, -1], atol=1e-5, rtol=1e-5)


def test_cache_and_context_limits_are_errors():
    model = tiny()
    cache = model.new_cache(1, 8)
    with torch.no_grad():
        model(torch.zeros(1, 6, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="cannot hold"):
            model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="exceeds the context"):
            model(torch.zeros(1, 65, dtype=torch.long))


def test_bfloat16_model_generates_with_a_bfloat16_cache():
    model = tiny().to(torch.bfloat16)
    assert model.new_cache(1, 4).k.dtype == torch.bfloat16
    out = run(model, [1, 2, 3], num_samples=2, seed=0, temperature=0.8, max_new_tokens=70)
    assert out.shape == (2, 70) and int(out.max()) < 211


def test_sampling_follows_the_model_distribution():
    """Temperature 1 draws from softmax(logits): a frequency check on the first token."""
    model = tiny(vocab_size=5)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([[1, 2]]))[0][0, -1], -1)
    out = run(model, [1, 2], num_samples=4000, seed=0, temperature=1.0, max_new_tokens=1)
    freq = torch.bincount(out[:, 0], minlength=5).float() / 4000
    assert torch.allclose(freq, probs, atol=4 * math.sqrt(0.25 / 4000))


def test_decode_one_equals_the_forward_and_writes_the_cache_in_place():
    """Batch-1 CPU decoding (generation.decode_one) is GPT.forward for one position; the cache
    is allocated once: the same storage, never grown, across every token."""
    from minigpt_cli.generation import decode_one

    model = tiny("micro")
    ids = torch.randint(0, 211, (1, 40), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        full, _ = model(ids)  # (1, 40, V): every position at once, no cache
        cache = model.new_cache(1, 40)
        storage = (cache.k.untyped_storage().data_ptr(), cache.v.untyped_storage().data_ptr(),
                   cache.k.untyped_storage().nbytes())
        logits, _ = model(ids[:, :8], cache=cache, last_only=True)  # prefill
        assert torch.allclose(logits[0, -1], full[0, 7], atol=1e-5)
        for t in range(8, 40):
            logits = decode_one(model, ids[0, t : t + 1], cache)
            assert logits.shape == (1, 1, 211)
            assert torch.allclose(logits[0, -1], full[0, t], atol=1e-5)
            assert (cache.k.untyped_storage().data_ptr(), cache.v.untyped_storage().data_ptr(),
                    cache.k.untyped_storage().nbytes()) == storage
        assert cache.length == 40
        with pytest.raises(ValueError, match="cannot hold"):
            decode_one(model, ids[0, :1], cache)


def test_bfloat16_weights_pick_the_same_greedy_tokens_but_at_near_ties():
    """The built-in (trained) model, fp32 vs bf16 weights, on fp32's greedy continuations of
    four prompts (teacher-forced, 508 positions): bf16 picks fp32's token at >= 97% of
    positions (99.2% measured), and where it does not, fp32's two best logits were within
    the bf16 rounding of each other. Free-running greedy text therefore follows fp32's until
    the first such near-tie (measured: at token 3, never in 200, never, and at token 155)."""
    from minigpt_cli.loading import load_model

    model, tok, _ = load_model(None, None, "cpu", torch.float32)
    low, _, _ = load_model(None, None, "cpu", torch.bfloat16)
    total = same = 0
    for text in ["The ", "What is truth? ", "Supposing that Truth is a woman--what then? ",
                 "Morality "]:
        ids = tok.encode(text)
        out = run(model, ids, temperature=0.0, max_new_tokens=120)[0].tolist()
        seq = torch.tensor([(ids + out)[-model.config.block_size:]])
        with torch.no_grad():
            a, b = model(seq)[0][0], low(seq)[0][0].float()
        err = float((a - b).abs().max())
        differ = a.argmax(-1) != b.argmax(-1)
        top2 = a.topk(2, dim=-1).values
        assert bool(((top2[:, 0] - top2[:, 1])[differ] <= 2 * err).all())
        total, same = total + len(seq[0]), same + int((~differ).sum())
    assert same / total >= 0.97
