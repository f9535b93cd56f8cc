"""The one exception type the command line turns into a single stderr line."""


class DeepDreamError(Exception):
    """A user-facing failure: bad input, missing model, failed download...

    The message is one line, says what went wrong and, where there is one,
    what to do about it. The CLI prints it and exits non-zero; API users can
    catch it.
    """

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (Ctrl-C, SIGTERM), with a message that says where and how to go on.

    Still a KeyboardInterrupt, so code that stops on Ctrl-C keeps stopping;
    the command line prints the message and exits with the shell's code
    for the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every cleanup (temp files, atomic writes) runs."""

    signum = 15
