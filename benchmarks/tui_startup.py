"""The chat app's costs, each against a baseline measured in the same run.

    python benchmarks/tui_startup.py [--repeats 5] [--tokens 128] [--threads 1]
    python benchmarks/tui_startup.py --quick     # 1 repeat, 64 tokens: well under a minute

1. Start-up (a fresh process each time, warm file cache): from spawning
   ``python`` to the prompt being focused and drawn (the app is usable then; the
   model keeps loading in the background), and to the model being ready.
   Baselines: an empty interpreter, and one that only imports Textual.
2. Decode speed through the app vs consuming the same engine stream without
   any UI (what ``ask`` does): the real SmolLM2-135M, same prompt, greedy, same
   threads. The app runs headless (Textual's pilot): it lays out and renders
   every frame, but skips the terminal write, which a real terminal adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "List the numbers from 1 to 300, separated by commas."
SPAWN_ENV = "EDGE_BENCH_SPAWNED_AT"


# -- 1. start-up ---------------------------------------------------------------------------


async def _startup_pilot(pilot) -> None:  # type: ignore[no-untyped-def]
    """Runs inside the child: note when the prompt is usable, then when the model is loaded."""
    from textual.widgets import Input

    app = pilot.app
    spawned = float(os.environ[SPAWN_ENV])
    while not isinstance(app.focused, Input):
        await asyncio.sleep(0.001)
    await pilot.pause()  # one more refresh: the focused prompt is on screen
    interactive = time.time() - spawned
    # CPU time of this process so far: what the start costs on an idle machine, whatever
    # else shares the CPUs now (interpreter start-up before main() is not counted).
    cpu = time.process_time()
    while not app.model.ready and app.model.error is None:
        await asyncio.sleep(0.005)
    print(json.dumps({"interactive_s": interactive, "interactive_cpu_s": cpu,
                      "model_ready_s": time.time() - spawned, "load_error": app.model.error}), flush=True)
    app.exit()


def child_startup(threads: int) -> None:
    """What `edge-assistant chat` does, run headless with an autopilot that times it."""
    from edge_assistant import paths
    from edge_assistant.runtime.history import History
    from edge_assistant.settings import Settings
    from edge_assistant.tui.app import make_app
    from edge_assistant.tui.loading import assistant_loader

    settings = Settings(threads=threads)
    with History(paths.history_db()) as history:
        make_app(settings, assistant_loader(settings), history).run(headless=True,
                                                                           auto_pilot=_startup_pilot)


def spawn_seconds(args: list[str], home: Path) -> tuple[float, str]:
    env = {**os.environ, "EDGE_ASSISTANT_HOME": str(home), "PYTHONPATH": str(ROOT), SPAWN_ENV: repr(time.time())}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return time.perf_counter() - started, done.stdout


def seed_history(home: Path) -> None:
    """A history with some conversations, so start-up also opens one."""
    env_home = os.environ.get("EDGE_ASSISTANT_HOME")
    os.environ["EDGE_ASSISTANT_HOME"] = str(home)
    try:
        from edge_assistant import paths
        from edge_assistant.runtime.history import History

        with History(paths.history_db()) as history:
            for i in range(30):
                c = history.create_conversation(f"conversation {i}")
                for j in range(10):
                    history.add_user_message(c.id, f"question {j} " * 20)
                    reply = history.begin_reply(c.id, None)
                    history.finish_reply(reply, f"answer {j}\n\n```python\nprint({j})\n```\n" * 5, "complete")
    finally:
        if env_home is None:
            os.environ.pop("EDGE_ASSISTANT_HOME", None)
        else:
            os.environ["EDGE_ASSISTANT_HOME"] = env_home


def bench_startup(repeats: int, threads: int) -> list[tuple[str, float]]:
    with tempfile.TemporaryDirectory(prefix="tui-bench-") as tmp:
        home = Path(tmp)
        seed_history(home)
        me = str(Path(__file__).resolve())
        spawn_seconds([me, "--child-startup", "--threads", str(threads)], home)  # warm the file cache
        bare, textual_import, interactive, cpu, ready = [], [], [], [], []
        for _ in range(repeats):
            bare.append(spawn_seconds(["-c", "pass"], home)[0])
            textual_import.append(spawn_seconds(["-c", "import textual.app, textual.widgets"], home)[0])
            _, out = spawn_seconds([me, "--child-startup", "--threads", str(threads)], home)
            times = json.loads(out.strip().splitlines()[-1])
            if times["load_error"]:
                raise SystemExit(f"the model did not load: {times['load_error']}")
            interactive.append(times["interactive_s"])
            cpu.append(times["interactive_cpu_s"])
            ready.append(times["model_ready_s"])
    return [("python -c pass (baseline)", statistics.median(bare)),
            ("python importing textual", statistics.median(textual_import)),
            ("chat: prompt focused and drawn", statistics.median(interactive)),
            ("chat: same, CPU seconds used (idle-machine estimate)", statistics.median(cpu)),
            ("chat: model loaded (background)", statistics.median(ready))]


# -- 2. decode overhead ---------------------------------------------------------------------


TURN_TIMEOUT_S = 300.0


async def _finished_reply(pilot, history, before: int):  # type: ignore[no-untyped-def]
    """The reply the app saved for the message just sent, once its turn is over.

    Waits on the history, not on seeing ``chat_screen.turn`` set: the pilot's key press
    returns only when the app's message queues are idle, which a streaming reply keeps
    busy, so the whole turn can be over before the press returns."""
    app = pilot.app
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while True:
        conversations = history.conversations()
        if len(conversations) > before and app.chat_screen.turn is None:
            messages = history.messages(conversations[0].id)
            if messages and messages[-1].role == "assistant" and messages[-1].status != "partial":
                return messages[-1]
        if time.monotonic() > deadline:
            raise SystemExit(f"the chat app did not finish its reply within {TURN_TIMEOUT_S:.0f} s "
                             f"(status line: {app.chat_screen.status.state!r})")
        await pilot.pause(0.01)


async def _through_app(assistant, settings, history, draw: bool = True):  # type: ignore[no-untyped-def]
    from edge_assistant.runtime.assistant_handle import AssistantHandle
    from edge_assistant.tui import reply_stream
    from edge_assistant.tui.app import make_app

    # draw=False: the app runs, but streamed text is drawn only once, at the end; the
    # difference to draw=True is what drawing costs, the rest is the app just being there.
    every, most = reply_stream.RENDER_EVERY_S, reply_stream.MAX_RENDER_EVERY_S
    if not draw:
        reply_stream.RENDER_EVERY_S = reply_stream.MAX_RENDER_EVERY_S = 3600.0
    try:
        app = make_app(settings, AssistantHandle.loaded(assistant), history)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("ctrl+n")
            before = len(history.conversations())
            app.chat_screen.prompt.value = PROMPT
            await pilot.press("enter")
            reply = await _finished_reply(pilot, history, before)
    finally:
        reply_stream.RENDER_EVERY_S, reply_stream.MAX_RENDER_EVERY_S = every, most
    if reply.status != "complete":
        raise SystemExit(f"the chat app's reply ended {reply.status}: {reply.error}")
    return reply


def bench_decode(repeats: int, tokens: int, threads: int) -> list[tuple[str, float]]:
    from edge_assistant.modifier_names import BASE as NONE
    from edge_assistant.runtime.factory import open_assistant
    from edge_assistant.runtime.generation import Message
    from edge_assistant.sampling import SamplingParams
    from edge_assistant.runtime.history import History
    from edge_assistant.settings import Settings

    # Both paths sample from the same settings (greedy, no repeat penalty, which would end
    # this counting answer early), so they decode the same tokens.
    settings = Settings(threads=threads, max_tokens=tokens, temperature=0.0, seed=1, repeat_penalty=1.0,
                        modifier=NONE)
    sampling = SamplingParams.from_settings(settings)
    messages = [Message("system", settings.system_prompt), Message("user", PROMPT)]
    with tempfile.TemporaryDirectory(prefix="tui-bench-") as tmp:
        os.environ["EDGE_ASSISTANT_HOME"] = tmp
        assistant = open_assistant(settings, notify=lambda text: None)
        direct, through_app, not_drawn = [], [], []
        try:
            with History(Path(tmp) / "history.sqlite3") as history:
                for _ in range(repeats):  # alternate, so drift in machine load hits both alike
                    _, generation = assistant.reply(messages, override=NONE, sampling=sampling)
                    result = generation.run()
                    if result.completion_tokens < min(tokens, 64):
                        raise SystemExit(f"the model stopped after {result.completion_tokens} tokens; "
                                         "use a prompt with a longer answer")
                    direct.append(result.decode_tok_s)
                    for draw, into in ((True, through_app), (False, not_drawn)):
                        reply = asyncio.run(_through_app(assistant, settings, history, draw=draw))
                        if reply.completion_tokens != result.completion_tokens:
                            raise SystemExit(f"the chat app decoded {reply.completion_tokens} tokens, the engine "
                                             f"alone {result.completion_tokens}: they no longer sample alike")
                        into.append(float(reply.decode_tok_s or 0.0))
        finally:
            assistant.close()
    # Greedy with the same prompt: both paths decode the same tokens.
    return [("decode tok/s, engine stream, no UI (as ask; baseline)", statistics.median(direct)),
            ("decode tok/s, chat app running, reply drawn only at its end", statistics.median(not_drawn)),
            ("decode tok/s, through the chat app", statistics.median(through_app))]


def print_table(title: str, rows: list[tuple[str, float]], unit: str, baseline: float) -> None:
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    print(f"  {'':<{width}}  {unit:>10}  {'ratio':>7}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>10.3f}  {value / baseline:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-startup", action="store_true", help="only measure decode speed")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 64 tokens (well under a minute)")
    parser.add_argument("--child-startup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.tokens = 1, 64
    if args.child_startup:
        child_startup(args.threads)
        return
    print(f"edge-assistant chat app benchmark: {args.repeats} repeats (medians), threads={args.threads}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_startup:
        startup = bench_startup(args.repeats, args.threads)
        print_table("1. start-up, seconds from spawn (ratio to an empty interpreter)", startup, "seconds",
                    startup[0][1])
    decode = bench_decode(args.repeats, args.tokens, args.threads)
    print_table(f"2. decode speed, {args.tokens} tokens, SmolLM2-135M Q4_1 (ratio to no UI)", decode, "tok/s",
                decode[0][1])


if __name__ == "__main__":
    main()
