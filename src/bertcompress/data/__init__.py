"""Labelled tasks (sentence and tagging), unlabelled corpora, and their encoding for the models."""
