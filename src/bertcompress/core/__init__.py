"""The bottom layer: the one error type, atomic outputs, the config machinery, process ranks,
lazy imports, logging. Imports nothing else of bertcompress."""
