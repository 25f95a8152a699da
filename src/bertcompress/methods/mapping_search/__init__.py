"""Layer-mapping search for general distillation by a genetic algorithm over cheap proxy runs
(docs/methods.md, "Layer-mapping search")."""
