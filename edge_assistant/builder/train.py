"""The LoRA training loop, shared by phase 1 and every modifier.

Written on ``accelerate.Accelerator`` so the same code runs on one CPU, one
GPU, or several GPUs under ``accelerate launch`` / ``torchrun``. Data order is
a pure function of (seed, epoch), so a resumed run sees the batches it would
have seen. Checkpoints hold only what changes (the LoRA weights, optimizer,
scheduler, step and loss history): a few MB even for an 8B base.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..durable import atomic_file
from ..errors import BuildError
from .base_model import BaseSource, load_model, torch_dtype
from .dataset import IGNORE_INDEX, Example
from .memory import choose_checkpointing, free_memory
from .packing import collate_packed, pack_examples
from .recipe import TrainConfig, steps_for

CHECKPOINT_DIR = "checkpoints"
ADAPTER_DIR = "adapter"


@dataclass
class TrainResult:
    adapter_dir: Path
    steps: int
    resumed_from_step: int
    train_loss: list[tuple[int, float]]      # (step, mean loss of that step)
    val_loss_before: float
    val_loss_after: float
    tokens_seen: int
    seconds: float
    plan: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["adapter_dir"] = str(self.adapter_dir)
        data["final_train_loss"] = self.train_loss[-1][1] if self.train_loss else None
        return data


def _batches(n: int, batch_rows: int, seed: int, epoch: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return [order[i:i + batch_rows] for i in range(0, n, batch_rows)]


def micro_batches(n: int, batch_rows: int, seed: int, start: int):
    """Global micro-batches (row indices) from micro-step ``start`` onwards, epoch after epoch."""
    per_epoch = math.ceil(n / batch_rows)
    index = start
    while True:
        epoch, k = divmod(index, per_epoch)
        yield _batches(n, batch_rows, seed, epoch)[k]
        index += 1


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
        mask[row, : len(e.input_ids)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def lora_config(cfg: TrainConfig, alora_invocation_tokens: Sequence[int] | None = None) -> Any:
    """peft's LoraConfig for ``cfg``; with invocation tokens, an activated LoRA (see builder/alora.py)."""
    from peft import LoraConfig

    extra: dict[str, Any] = {}
    if alora_invocation_tokens is not None:
        extra["alora_invocation_tokens"] = [int(t) for t in alora_invocation_tokens]
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM", **extra)


def evaluate_loss(model: Any, examples: Sequence[Example], pad_id: int, batch_size: int, accelerator: Any) -> float:
    """Token-weighted mean loss over ``examples``, split across processes and summed."""
    import torch

    if not examples:
        return float("nan")
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    mine = examples[accelerator.process_index::accelerator.num_processes]
    with torch.no_grad():
        for i in range(0, len(mine), batch_size):
            batch = {k: v.to(accelerator.device) for k, v in collate(mine[i:i + batch_size], pad_id).items()}
            n_tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            out = model(**batch)
            total += torch.tensor([float(out.loss) * n_tokens, n_tokens], dtype=torch.float64, device=total.device)
    total = accelerator.reduce(total, reduction="sum")
    model.train()
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


def _lr_lambda(warmup: int, total: int):
    def schedule(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))  # cosine down to 10%
    return schedule


def _checkpoints(out_dir: Path) -> list[Path]:
    """Checkpoints oldest first (names that are not ``step-N.pt`` are not ours: ignored)."""
    found = [p for p in (out_dir / CHECKPOINT_DIR).glob("step-*.pt") if p.stem.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.stem.split("-", 1)[1]))


def _load_checkpoint(out_dir: Path, label: str,
                     log: Callable[[str], None] | None) -> tuple[Path | None, dict[str, Any] | None]:
    """The newest checkpoint that loads, newest first; an unreadable one is skipped with a line.

    ``weights_only=True``: a checkpoint is a pickle, and a full unpickle runs whatever code a
    tampered file names. Ours hold only tensors, numbers, strings, lists and dicts.
    """
    import pickle

    import torch

    found = _checkpoints(out_dir)
    for path in reversed(found):
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(saved, dict) or not {"lora", "optimizer", "scheduler", "state"} <= saved.keys():
                raise ValueError("not a training checkpoint of this version")
            return path, saved
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
            if log is not None:
                log(f"{label}: skipping checkpoint {path.name}: it does not load as plain weights "
                    f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    if found:
        raise BuildError(f"{label}: none of the {len(found)} checkpoints in {out_dir / CHECKPOINT_DIR} loads",
                         hint=f"delete {out_dir / CHECKPOINT_DIR} to train this stage from the start")
    return None, None


def _save_checkpoint(out_dir: Path, step: int, state: dict[str, Any]) -> Path:
    import torch

    folder = out_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step}.pt"
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
    # Keep the newest two: if the newest turns out unreadable, the one before still resumes.
    for old in _checkpoints(out_dir)[:-2]:
        old.unlink(missing_ok=True)
    return path


def attention_kernel(setting: str, on_gpu: bool) -> str:
    """The transformers ``attn_implementation`` for a recipe's ``attention`` setting."""
    if setting != "auto":
        return setting
    import importlib.util

    return "flash_attention_2" if on_gpu and importlib.util.find_spec("flash_attn") else "sdpa"


def train_lora(source: BaseSource, cfg: TrainConfig, train: Sequence[Example], val: Sequence[Example], *,
               out_dir: Path, seed: int, pad_id: int, label: str, progress: bool = True,
               log: Callable[[str], None] = print, model: Any = None,
               alora_invocation_tokens: Sequence[int] | None = None) -> TrainResult:
    """Train a LoRA on ``source``; checkpoints and the final adapter go under ``out_dir``.

    With ``alora_invocation_tokens`` it is an activated LoRA: peft finds the last
    invocation in each row and applies the adapter from there on only (rows are then
    never packed: each needs its own activation point).
    ``model``: an already built base model to train instead of loading ``source`` (the GPU
    benchmark initialises a random 8B directly on the device); it is changed in place.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    if not train:
        raise BuildError(f"{label}: no training rows left after tokenization",
                         hint="raise max_seq_len or check the data's assistant turns")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())  # cpu=True: multi-process CPU runs use gloo
    set_seed(seed)
    on_gpu = accelerator.device.type == "cuda"
    dtype = torch_dtype(cfg.dtype if cfg.dtype != "auto" else ("bf16" if on_gpu else "fp32"))
    attention = attention_kernel(cfg.attention, on_gpu)
    if model is None:
        model = load_model(source, "bf16" if dtype == torch.bfloat16 else "fp32", attention=attention)
    elif hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attention)
    model.to(accelerator.device)
    model.config.use_cache = False
    rows: Sequence[Any] = train
    packing = cfg.packing and not alora_invocation_tokens
    if packing:
        rows = pack_examples(train, cfg.max_seq_len)
        if accelerator.is_main_process:
            log(f"{label}: packed {len(train)} rows into {len(rows)} sequences of <= {cfg.max_seq_len} tokens")
    checkpointing = choose_checkpointing(cfg.gradient_checkpointing, model.config, cfg.batch_size * cfg.max_seq_len,
                                         2 if dtype == torch.bfloat16 else 4, free_memory(accelerator.device))
    if checkpointing.enabled:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if cfg.gradient_checkpointing == "auto" and accelerator.is_main_process:
        log(f"{label}: gradient checkpointing {'on' if checkpointing.enabled else 'off'} ({checkpointing.reason})")
    model = get_peft_model(model, lora_config(cfg, alora_invocation_tokens))  # LoRA weights stay fp32 even on a bf16 base
    if cfg.compile:
        model.compile(dynamic=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    world = accelerator.num_processes
    per_epoch, total_steps = steps_for(cfg, len(rows), world)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.warmup_steps, total_steps))
    model, optimizer = accelerator.prepare(model, optimizer)

    state: dict[str, Any] = {"step": 0, "train_loss": [], "tokens": 0, "val_before": None}
    resumed = 0
    checkpoint, saved = _load_checkpoint(out_dir, label, log if accelerator.is_main_process else None)
    if saved is not None:
        set_peft_model_state_dict(accelerator.unwrap_model(model), saved["lora"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        resumed = state["step"]
        if accelerator.is_main_process:
            log(f"{label}: resuming from {checkpoint.name} (step {resumed}/{total_steps})")
    if state["val_before"] is None:
        state["val_before"] = evaluate_loss(model, val, pad_id, cfg.batch_size, accelerator)

    started = time.time()
    batch_rows = cfg.batch_size * world
    stream = micro_batches(len(rows), batch_rows, seed, state["step"] * cfg.grad_accum)
    batch_of = collate_packed if packing else collate
    bar = None
    if progress and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=state["step"], desc=label, unit="step", dynamic_ncols=True)
    model.train()
    step_times: list[tuple[float, int]] = []  # (seconds, tokens) per optimizer step of this run
    while state["step"] < total_steps:
        step_started = time.perf_counter()
        step_loss, step_tokens = 0.0, 0
        for _micro in range(cfg.grad_accum):
            global_rows = next(stream)
            # The last batch of an epoch may have fewer rows than processes: repeat one rather than hang DDP.
            mine = global_rows[accelerator.process_index::world] or global_rows[:1]
            picked = [rows[i] for i in mine]
            batch = {k: v.to(accelerator.device) for k, v in batch_of(picked, pad_id).items()}
            out = model(**batch)
            accelerator.backward(out.loss / cfg.grad_accum)
            step_loss += float(out.loss.detach()) / cfg.grad_accum
            step_tokens += sum(len(e.input_ids) for e in picked)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["tokens"] += step_tokens * world
        step_times.append((time.perf_counter() - step_started, step_tokens * world))
        state["train_loss"].append((state["step"], round(step_loss, 5)))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}")
        if cfg.eval_every and state["step"] % cfg.eval_every == 0 and state["step"] < total_steps:
            val_loss = evaluate_loss(model, val, pad_id, cfg.batch_size, accelerator)
            if accelerator.is_main_process:
                log(f"{label}: step {state['step']} val loss {val_loss:.4f}")
        if state["step"] % cfg.checkpoint_every == 0 or state["step"] == total_steps:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                _save_checkpoint(out_dir, state["step"], {
                    "lora": get_peft_model_state_dict(accelerator.unwrap_model(model)),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "state": state})
    if bar is not None:
        bar.close()
    val_after = evaluate_loss(model, val, pad_id, cfg.batch_size, accelerator)
    adapter_dir = out_dir / ADAPTER_DIR
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(adapter_dir, safe_serialization=True)
        (adapter_dir / "train_state.json").write_text(json.dumps(state["train_loss"]) + "\n")
    accelerator.wait_for_everyone()
    return TrainResult(adapter_dir=adapter_dir, steps=state["step"], resumed_from_step=resumed,
                       train_loss=[tuple(x) for x in state["train_loss"]], val_loss_before=state["val_before"],
                       val_loss_after=val_after, tokens_seen=state["tokens"], seconds=time.time() - started,
                       plan={"steps_per_epoch": per_epoch, "total_steps": total_steps, "world_size": world,
                             "rows_per_step": batch_rows * cfg.grad_accum,
                             "max_tokens_per_step": batch_rows * cfg.grad_accum * cfg.max_seq_len,
                             "dtype": str(dtype).replace("torch.", ""), "attention": attention,
                             "gradient_checkpointing": checkpointing.enabled, "packing": packing,
                             "sequences": len(rows), "compile": cfg.compile, "step_times": step_times,
                             "peak_gpu_mb": (torch.cuda.max_memory_allocated(accelerator.device) / 2**20
                                             if on_gpu else None)})
