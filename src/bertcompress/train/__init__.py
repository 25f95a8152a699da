"""The one training loop every method plugs its objective into, with checkpoints, DDP and search."""
