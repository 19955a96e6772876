"""Build the tiny character-level Nietzsche model embedded in the package (the no-network default
for `minigpt sample`). Run from the repository root with ../shared/data beside it:

    python scripts/build_default_model.py --minutes 12

It reads the 21 works in ../shared/data/nietzsche, strips the Project Gutenberg header/footer,
trains a 4-layer, 128-wide char model with AdamW + warmup/cosine on one process for a fixed
wall-clock budget, and writes src/minigpt_cli/assets/nietzsche-char-tiny.safetensors.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import torch

from minigpt_cli.checkpoint import save_checkpoint
from minigpt_cli.model import GPT, GPTConfig
from minigpt_cli.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]
START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M)
END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M)


def corpus(folder: Path) -> str:
    works = []
    for f in sorted(folder.glob("*.txt")):
        text = f.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        s, e = START.search(text), END.search(text)
        works.append(text[s.end() if s else 0 : e.start() if e else len(text)].strip())
    return "\n\n".join(works)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "nietzsche")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--out", type=Path,
                    default=ROOT / "src" / "minigpt_cli" / "assets" / "nietzsche-char-tiny.safetensors")
    args = ap.parse_args()
    torch.manual_seed(0)
    text = corpus(args.data)
    tok = CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=128, n_layer=4, n_head=4, n_embd=128)
    model = GPT(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}], lr=2e-3, betas=(0.9, 0.95))
    budget, t0, step, B, T = args.minutes * 60, time.time(), 0, 16, cfg.block_size
    while (elapsed := time.time() - t0) < budget:
        frac = elapsed / budget
        lr = 2e-3 * min(1.0, step / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = torch.randint(len(data) - T - 1, (B,))
        x = torch.stack([data[i : i + T] for i in ix])
        y = torch.stack([data[i + 1 : i + T + 1] for i in ix])
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} lr {lr:.2e} {elapsed:.0f}s", flush=True)
        step += 1
    save_checkpoint(args.out, model, tok, step=step,
                    extra={"trained_on": "21 Nietzsche works (Project Gutenberg)",
                           "minutes": args.minutes, "final_train_loss": loss.item()})
    print(f"wrote {args.out} after {step} steps, loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
