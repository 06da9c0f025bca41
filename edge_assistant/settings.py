"""Typed, documented settings, frozen at launch.

Sources, later wins: defaults < ``settings.toml`` (see ``edge-assistant paths``)
< ``EDGE_ASSISTANT_<FIELD>`` environment variables < command-line flags (the
CLI applies those with :func:`dataclasses.replace`). What the user changes
while chatting (the current conversation, a per-message modifier) is state of
the chat app, not a setting.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .document import loads_toml
from .errors import SettingsError
from .modifier_names import AUTO, canonical
from .sampling import DEFAULT_SAMPLING as _SAMPLING
from .threads import MAX_THREADS, usable_cpus

ENV_PREFIX = "EDGE_ASSISTANT_"
# Values of `weight_repack` (used by runtime/llama_load.py).
WEIGHT_REPACK_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Settings:
    bundle: str | None = field(
        default=None,
        metadata={"help": "Bundle folder or installed bundle name. Unset: the newest installed bundle, "
                          "else the shipped starter bundle on the embedded demo model."},
    )
    starter: bool = field(
        default=True,
        metadata={"help": "With no bundle set or installed, use the starter bundle shipped with edge-assistant "
                          "(modifiers and a router for the demo model); false: the demo model alone."},
    )
    threads: int = field(
        default=0,
        metadata={"help": "CPU threads for decoding; 0 picks one per free physical core. More threads than "
                          "free cores makes llama.cpp much slower, not faster."},
    )
    batch_threads: int = field(
        default=0,
        metadata={"help": "CPU threads for prompt processing; 0 uses the same number as `threads`."},
    )
    weight_repack: str = field(
        default="auto",
        metadata={"help": "Let llama.cpp repack weights into its extra CPU buffer types (AMX, CPU_REPACK) for "
                          "faster kernels: auto (off where the CPU offers AMX, whose kernels crash on quantized "
                          "models in this llama.cpp; on elsewhere), on, or off. `doctor` shows the choice."},
    )
    context_length: int = field(
        default=4096,
        metadata={"help": "Context window in tokens (capped at what the model was trained for). "
                          "Older turns are left out of the prompt when a conversation outgrows it."},
    )
    gpu_layers: int = field(
        default=0,
        metadata={"help": "Layers to offload to a GPU when llama.cpp was built with one (-1: all)."},
    )
    kv_state_mb: int = field(
        default=1024,
        metadata={"help": "Memory in MB for the conversation states kept per modifier, so that switching "
                          "back to a modifier (or to the base) does not re-read the conversation; the least "
                          "recently used state is dropped past it. 0 keeps none."},
    )
    # Sampling: the defaults are SamplingParams's (runtime/generation.py), the one owner.
    max_tokens: int = field(default=_SAMPLING.max_tokens, metadata={"help": "Most tokens generated per reply."})
    temperature: float = field(default=_SAMPLING.temperature,
                               metadata={"help": "Sampling temperature; 0 is greedy."})
    top_p: float = field(default=_SAMPLING.top_p, metadata={"help": "Nucleus sampling threshold."})
    repeat_penalty: float = field(
        default=_SAMPLING.repeat_penalty,
        metadata={"help": "Penalty for repeating recent tokens (1.0: off); small models loop without it."},
    )
    seed: int | None = field(default=_SAMPLING.seed, metadata={"help": "Sampling seed; unset is random."})
    modifier: str = field(
        default=AUTO,
        metadata={"help": "Which modifier answers: auto (the router decides), base (the base alone; "
                          "none also works) or a modifier's name."},
    )
    system_prompt: str = field(
        default="You are a helpful assistant.",
        metadata={"help": "System prompt for new conversations."},
    )

    @classmethod
    def fields_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _coerce(name: str, kind: object, value: object, source: str) -> object:
    """Convert ``value`` to the field's type or raise a SettingsError naming the source."""
    args = typing.get_args(kind)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), kind) if args else kind
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("", "none")):
        if optional:
            return None
        raise SettingsError(f"{source}: '{name}' cannot be empty", hint="remove it to use the default")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if base is float:
            return float(value)
        if base is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        pass
    type_name = getattr(base, "__name__", str(base))
    raise SettingsError(f"{source}: '{name}' must be {type_name}, got {value!r}",
                        hint=f"fix it in {source}")


def load_settings(path: Path | None = None, environ: typing.Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file, then the environment."""
    environ = os.environ if environ is None else environ
    path = paths.settings_file() if path is None else path
    hints = typing.get_type_hints(Settings)
    known = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, object] = {}
    if path.exists():
        try:
            data = loads_toml(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path} is not valid TOML ({exc})", hint="fix or delete the file") from exc
        except IsADirectoryError as exc:
            raise SettingsError(f"{path} is a folder, not a settings file",
                                hint="move the folder aside; a settings file is optional") from exc
        except OSError as exc:
            raise SettingsError(f"cannot read {path} ({exc.strerror or exc})",
                                hint="check the file's permissions, or move it aside") from exc
        for key, value in data.items():
            if key not in known:
                raise SettingsError(f"{path}: unknown setting '{key}'",
                                    hint=f"known settings: {', '.join(sorted(known))}")
            values[key] = _coerce(key, hints[key], value, str(path))
    for name in known:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, hints[name], environ[env_name], f"${env_name}")
    settings = _spelled_one_way(Settings(**values))
    _validate(settings)
    return settings


def _spelled_one_way(s: Settings) -> Settings:
    """``modifier`` in its canonical spelling (``none`` becomes ``base``)."""
    return s if canonical(s.modifier) == s.modifier else dataclasses.replace(s, modifier=canonical(s.modifier))


def _validate(s: Settings) -> None:
    if s.threads < 0 or s.batch_threads < 0:
        raise SettingsError("threads must be 0 (automatic) or a positive number", hint="set threads = 0")
    for name in ("threads", "batch_threads"):
        value = getattr(s, name)
        if value > MAX_THREADS:
            raise SettingsError(f"{name} = {value} is more than the {MAX_THREADS} threads llama.cpp can be given",
                                hint=f"use 0 (automatic) or at most {usable_cpus()}, the CPUs this machine has")
    if s.context_length < 256:
        raise SettingsError(f"context_length {s.context_length} is too small", hint="use at least 256")
    if s.kv_state_mb < 0:
        raise SettingsError(f"kv_state_mb {s.kv_state_mb} is negative", hint="use 0 to keep no states, or 1024")
    if s.max_tokens < 1:
        raise SettingsError("max_tokens must be at least 1", hint=f"set max_tokens = {_SAMPLING.max_tokens}")
    if not 0 <= s.temperature <= 5:
        raise SettingsError(f"temperature {s.temperature} is outside 0..5",
                            hint=f"use {_SAMPLING.temperature}, or 0 for greedy")
    if not 0.5 <= s.repeat_penalty <= 2:
        raise SettingsError(f"repeat_penalty {s.repeat_penalty} is outside 0.5..2",
                            hint=f"use {_SAMPLING.repeat_penalty}, or 1.0 for none")
    if s.weight_repack not in WEIGHT_REPACK_MODES:
        raise SettingsError(f"weight_repack {s.weight_repack!r} is not one of {', '.join(WEIGHT_REPACK_MODES)}",
                            hint='set weight_repack = "auto"')
    if not 0 < s.top_p <= 1:
        raise SettingsError(f"top_p {s.top_p} is outside (0, 1]", hint=f"use {_SAMPLING.top_p}")


def with_overrides(settings: Settings, **overrides: object) -> Settings:
    """Apply command-line flags (``None`` means "not given") and re-validate."""
    given = {k: v for k, v in overrides.items() if v is not None}
    result = _spelled_one_way(dataclasses.replace(settings, **given))
    _validate(result)
    return result
