"""BERT-of-Theseus: compression by progressive module replacing."""
