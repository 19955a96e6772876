"""Nothing in the package can turn a file into code: no module imports pickle (or its
relatives), and nothing calls torch.load, numpy's pickle path or eval/exec."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "minigpt_cli"
BANNED_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
BANNED_CALLS = {"torch.load", "eval", "exec", "np.load", "numpy.load"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_no_module_imports_pickle_or_loads_code():
    found = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Call):
                names = [_dotted(node.func)] if _dotted(node.func) in BANNED_CALLS else []
                found += [f"{path.relative_to(SRC)}:{node.lineno} calls {n}" for n in names]
                continue
            else:
                continue
            found += [f"{path.relative_to(SRC)}:{node.lineno} imports {n}" for n in names
                      if n in BANNED_MODULES]
    assert found == []
