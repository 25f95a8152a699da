"""Extract Then Distill (extract.py) and structured pruning (structured.py), both driven by the
unit importance of importance.py; the pruned-model format lives in models/pruned.py."""
