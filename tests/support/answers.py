"""What a working decode of the real SmolLM2 says to "What is the capital of France?".

The 135M model's greedy words depend on the CPU kernels llama.cpp picks (with weight
repacking off it opens with "Le Bristol ... is the capital of France."), so the
check is that the reply is on topic, which garbage from a broken decode never is.
"""


def on_topic_capital_answer(text: str) -> bool:
    return "Paris" in text or "capital of France" in text
