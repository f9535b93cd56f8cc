"""The one exception type the command line turns into a single stderr line."""


class DeepDreamError(Exception):
    """A user-facing failure: bad input, missing model, failed download...

    The message is one line, says what went wrong and, where there is one,
    what to do about it. The CLI prints it and exits non-zero; API users can
    catch it.
    """

    exit_code = 1
