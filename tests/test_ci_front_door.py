"""The README's commands are the front door; CI runs the test command verbatim."""

import subprocess

from conftest import ROOT


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- test-command -->" in readme and "<!-- main-command -->" in readme
    out = subprocess.run(
        ["awk", '/<!-- test-command -->/{getline; while ($0 !~ /^```/) getline; getline; print; exit}',
         str(ROOT / "README.md")], capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out.startswith("python3 -m venv") and "pytest" in out
    assert "torch==2.13.0" in out
