"""The NAS-BERT model: its architecture description (arch.py, free of torch), ops and model
classes. Importing `bertcompress.models.nasbert.modeling` registers "nasbert" with transformers'
Auto classes, so saved NAS-BERT folders load through `AutoModel*.from_pretrained`."""
