"""The one exception type users see: a problem with their input, named in one line."""


class NMTError(Exception):
    """Bad input or configuration. The CLI prints ``str(err)`` as one line and exits with status 2."""


class ConfigValueError(NMTError, ValueError):
    """A config value outside its allowed set, or options that do not go together."""
