"""The one exception type that means "the user gave us something we cannot use".

The CLI prints it as a single line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
    """Bad input: a file, a config value, a model, a mapping. The message is shown as-is."""


class TrainingDiverged(UserError):
    """Loss became NaN or inf; the last good checkpoint is kept."""
