"""The offline builder: the only package that imports torch, transformers and peft."""
