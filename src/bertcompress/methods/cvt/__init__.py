"""Cross-View Training (Clark et al. 2018; docs/methods.md, "Cross-View Training"): a light
CNN-BiLSTM tagger from a small labelled budget and unlabelled sentences."""
