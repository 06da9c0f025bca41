"""Offline builder: the only package that imports torch, transformers, peft and gguf."""
