"""The one normaliser (mathgen/question.py): people's spellings -> the canonical prompt."""

import pytest

from minigpt_cli.mathgen.formats import prompt_text
from minigpt_cli.mathgen.question import QuestionError, is_canonical, normalise


@pytest.mark.parametrize("text, prompt", [
    ("35 + 42 = ?", "35+42="), ("35+42=", "35+42="), ("35+42", "35+42="),
    ("35 + 42 ?", "35+42="), ("35+42=?", "35+42="), ("what is 12 x 7", "12*7="),
    ("What is 12×7?", "12*7="), ("12 * 7 =", "12*7="), ("12X7", "12*7="),
    ("1,000 ÷ 7 = ?", "1000/7="), ("1000/7", "1000/7="), ("9 - 15", "9-15="),
    ("9 − 15 =", "9-15="), ("  007 + 1 ", "7+1="), ("compute 3*4", "3*4="),
])
def test_spellings_map_to_the_canonical_prompt(text, prompt):
    assert normalise(text).prompt == prompt


@pytest.mark.parametrize("text, says", [
    ("hello", "one operation between them"), ("-5 + 3", "negative operands"),
    ("5 + -3", "negative operands"), ("1.5 + 2", "decimals"), ("1 + 2 + 3", "only one"),
    ("5 / 0", "divides by zero"), ("1234567890 + 1", "more than 9 digits"), ("", "cannot read"),
])
def test_what_it_cannot_read_gets_a_clear_message(text, says):
    with pytest.raises(QuestionError) as e:
        normalise(text)
    assert says in str(e.value)


def test_make_math_prompts_are_the_normalisers():
    assert prompt_text("*", 47, 86) == "47*86=" == normalise("47 x 86 = ?").prompt
    assert is_canonical("47*86=") and not is_canonical("47 * 86")
