"""NAS-BERT (docs/methods.md, "NAS-BERT"): block-wise supernet training, search-space pruning,
latency tables and budgeted selection; the model class lives in models/nasbert/."""
