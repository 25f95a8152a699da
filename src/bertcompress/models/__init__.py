"""Every model we load, build or save: teachers of any family, students, and the formats plain
`transformers` cannot read alone (pruned, packed quantized, NAS-BERT)."""
