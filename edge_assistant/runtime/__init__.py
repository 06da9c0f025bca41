"""Runtime: the llama.cpp engine, modifier hot-swap, chat turns, history.

Never imports torch, transformers, peft or textual (a test checks).
"""
