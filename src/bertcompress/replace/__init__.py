"""Progressive module replacing (BERT-of-Theseus).

    from bertcompress.replace import TheseusConfig
    from bertcompress.replace.theseus import theseus   # imports torch and transformers

The verb is not re-exported here: a package attribute named like its submodule `theseus` would be
the function or the module depending on import order.
"""

from .config import TheseusConfig

__all__ = ["TheseusConfig"]
