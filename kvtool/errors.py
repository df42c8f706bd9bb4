"""The one error type a user can cause; the CLI prints its message on one line and exits non-zero."""


class KvtoolError(Exception):
    """A problem with the user's input (file, artifact, option), described in one line."""
