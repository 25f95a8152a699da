"""TinyBERT transformer distillation (docs/methods.md, "TinyBERT distillation"): embedding, attention, hidden
and prediction losses over any layer mapping; general then task-specific; data augmentation."""
