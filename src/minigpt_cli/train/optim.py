"""The optimizer: AdamW with GPT-3's settings (Brown et al. 2020, appendix B: beta1 0.9, beta2
0.95, eps 1e-8, weight decay 0.1), decaying only >= 2-D weights (matmul weights and embeddings,
not biases or LayerNorm gains), fused into one kernel per step where the device supports it.
``optimizer = "muon"`` hands the 2-D weights of the transformer's Linear layers to Muon
(muon.py) at ``muon_lr`` and keeps AdamW for the rest (embeddings and the tied output layer,
biases, LayerNorm gains, LoRA adapters).

Its state goes to safetensors keyed by parameter name (no pickle), so a checkpoint's optimizer
file reads like its model file.
"""

from __future__ import annotations

import json

import torch

from minigpt_cli.errors import MinigptError
from minigpt_cli.train.muon import Chain, Muon


def named_trainable(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Trainable parameters by name; tied weights (lm_head = wte) appear once. Frozen ones
    (``requires_grad = False``, e.g. finetune's frozen blocks) are left out."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def fused_supported(device: torch.device) -> bool:
    return device.type in ("cuda", "cpu", "mps")


def build_optimizer(model: torch.nn.Module, settings, device: torch.device):
    params = named_trainable(model)
    if not params:
        raise MinigptError("Every parameter is frozen: there is nothing to train.")
    muon = muon_params(model) if settings.optimizer == "muon" else set()
    decay = [p for _, p in params if p.dim() >= 2 and id(p) not in muon]
    no_decay = [p for _, p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs = dict(lr=settings.lr, betas=(settings.beta1, settings.beta2), eps=settings.eps)
    adamw = None
    if fused_supported(device):
        try:
            adamw = torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError):
            pass
    adamw = adamw or torch.optim.AdamW(groups, **kwargs)
    if not muon:
        return adamw
    hidden = [p for _, p in params if id(p) in muon]
    if not hidden:  # e.g. LoRA: every Linear weight frozen
        return adamw
    ratio = settings.muon_lr / settings.lr
    # the loop sets every group's lr to the schedule's value times the group's lr_ratio; the
    # decay per step matches AdamW's (lr x weight_decay) whichever optimizer a weight has
    return Chain(adamw, Muon([{"params": hidden, "lr_ratio": ratio}], lr=settings.muon_lr,
                             momentum=settings.muon_momentum,
                             weight_decay=settings.weight_decay / ratio))


def muon_params(model: torch.nn.Module) -> set[int]:
    """ids of the weights Muon trains: the 2-D weights of Linear layers, the output layer's
    excepted (with GPT-2's tying it is the token embedding, which stays with AdamW)."""
    head = getattr(model, "lm_head", None)
    return {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)
            and m is not head and m.weight.requires_grad and m.weight.dim() == 2}


def describe(optimizer) -> list[str]:
    """A start-of-run note saying which weights Muon trains (none for plain AdamW)."""
    if not isinstance(optimizer, Chain):
        return []
    adamw, muon = optimizer.parts
    n_muon = [p.numel() for g in muon.param_groups for p in g["params"]]
    n_adam = sum(p.numel() for g in adamw.param_groups for p in g["params"])
    return [f"Muon on {len(n_muon)} matrices ({sum(n_muon):,} params), AdamW on the rest "
            f"({n_adam:,} params)"]


def param_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Names of the optimizer's parameters in its own index order."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for g in optimizer.param_groups for p in g["params"]]


def optimizer_tensors(model, optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors named ``<param>.<state key>``, metadata with the param groups as JSON)."""
    names = param_names(model, optimizer)
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{names[idx]}.{key}"] = t.detach().to("cpu").contiguous()
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": [names[i] for i in
              g["params"]]} for g in sd["param_groups"]]
    return tensors, {"param_groups": json.dumps(groups)}


def load_optimizer_tensors(model, optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                           what: str) -> None:
    names = param_names(model, optimizer)
    index = {n: i for i, n in enumerate(names)}
    try:
        saved_groups = json.loads(meta["param_groups"])
    except (KeyError, ValueError) as e:
        raise MinigptError(f"{what}: the optimizer state has damaged metadata ({e!r}).") from None
    saved = [list(g.get("params", [])) for g in saved_groups]
    current = optimizer.state_dict()["param_groups"]
    here = [[names[i] for i in g["params"]] for g in current]
    if saved != here:
        raise MinigptError(
            f"{what}: the optimizer state covers other parameters than this model trains "
            f"({sum(map(len, saved))} saved, {len(names)} here; were other layers frozen?)."
        )
    state: dict[int, dict] = {}
    for key, t in tensors.items():
        name, _, field = key.rpartition(".")
        state.setdefault(index[name], {})[field] = t
    # hyperparameters come from the current settings (the loop sets the LR every step)
    optimizer.load_state_dict({"state": state, "param_groups": current})
