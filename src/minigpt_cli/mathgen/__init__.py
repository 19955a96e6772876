"""Arithmetic problems with step-by-step solutions that an independent checker verifies.

``make_math`` (dataset.py) writes the data set; ``check`` (checker.py) scores any solution text,
the generator's or a model's, step by step. See formats.py for the formats.
"""

from minigpt_cli.mathgen.checker import CheckResult, check
from minigpt_cli.mathgen.problems import Problem

__all__ = ["CheckResult", "Problem", "check"]
