"""The one exception type users see: a message that says what is wrong and what to do."""


class MinigptError(Exception):
    """A problem with the user's input (a file, a flag, a setting) rather than a bug.

    The CLI prints ``str(error)`` as one paragraph on stderr and exits non-zero, without a
    traceback. Core code raises it; it never prints.
    """

    exit_code = 2


class IncompatibleError(MinigptError):
    """Two artefacts that must agree do not (tokenizer vs checkpoint, config vs weights)."""
