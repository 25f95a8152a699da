"""Fine-tuning a model (usually the teacher) on a labelled task."""
