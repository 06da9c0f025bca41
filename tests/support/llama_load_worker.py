"""A separate process that loads a GGUF through ``runtime.llama_load`` (or the engine) and decodes.

    python -m tests.support.llama_load_worker GGUF {loader,engine} [--weight-repack MODE] [--no-decode]

Prints one JSON line on stdout: the weight-repack choice, what the loaded model's
parameters say, and (unless ``--no-decode``) the greedy answer. It runs in its
own process because the failure it guards against is a segfault inside
``llama_decode``: in-process, that would kill pytest instead of failing a test.
llama.cpp's load log goes to stderr (the tests read its buffer-type lines).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_assistant.runtime.llama_load import choose_weight_repack, cpu_extra_buffer_types, load_llama

QUESTION = "Which city is the capital of France?"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", type=Path)
    parser.add_argument("via", choices=("loader", "engine"))
    parser.add_argument("--weight-repack", default=None)
    parser.add_argument("--no-decode", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {"offered": list(cpu_extra_buffer_types()),
                                 "choice": choose_weight_repack(args.weight_repack).use_extra_bufts}
    if args.via == "engine":
        from edge_assistant.runtime.engine import LlamaEngine
        from edge_assistant.runtime.generation import Message
        from edge_assistant.sampling import SamplingParams
        from edge_assistant.runtime.llama_load import set_weight_repack

        if args.weight_repack:
            set_weight_repack(args.weight_repack)
        with LlamaEngine(args.gguf, threads=1, context_length=1024) as engine:
            report["use_extra_bufts"] = bool(engine._llm.model_params.use_extra_bufts)
            if not args.no_decode:
                messages = [Message("system", "You are a helpful assistant."), Message("user", QUESTION)]
                report["text"] = engine.generate(messages, sampling=SamplingParams(max_tokens=40, temperature=0.0,
                                                                                   seed=1)).run().text
    else:
        llm = load_llama(args.gguf, weight_repack=args.weight_repack, n_ctx=256, n_batch=256, n_threads=1,
                         n_threads_batch=1, seed=1, verbose=True)   # verbose: the load log on stderr
        try:
            report["use_extra_bufts"] = bool(llm.model_params.use_extra_bufts)
            if not args.no_decode:
                out = llm("The capital of France is", max_tokens=6, temperature=0.0)
                report["text"] = out["choices"][0]["text"]
        finally:
            llm.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
