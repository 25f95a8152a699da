"""Searching how to compress: the layer mapping of general distillation by a genetic algorithm.

    from bertcompress.search import MappingSearchConfig
    from bertcompress.search.layer_mapping import search_mapping   # imports torch and transformers
"""

from .config import GeneticConfig, MappingSearchConfig

__all__ = ["GeneticConfig", "MappingSearchConfig"]
