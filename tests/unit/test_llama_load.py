"""The weight-repack decision of runtime/llama_load.py, and the setting that forces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.errors import ModelError, SettingsError
from edge_assistant.runtime import llama_load
from edge_assistant.runtime.llama_load import choose_weight_repack, cpu_extra_buffer_types, model_params
from edge_assistant.settings import load_settings


@pytest.mark.parametrize("offered", [("AMX", "CPU_REPACK"), ("AMX",)])
def test_auto_turns_extra_buffers_off_where_the_cpu_backend_offers_amx(offered):
    choice = choose_weight_repack("auto", offered)
    assert choice.use_extra_bufts is False
    assert "AMX" in choice.describe()


@pytest.mark.parametrize("offered", [("CPU_REPACK",), ("CPU_KLEIDIAI", "CPU_REPACK"), ()])
def test_auto_keeps_extra_buffers_without_amx(offered):
    assert choose_weight_repack("auto", offered).use_extra_bufts is True


@pytest.mark.parametrize("offered", [("AMX", "CPU_REPACK"), ("CPU_REPACK",)])
def test_the_setting_forces_the_choice_whatever_the_cpu(offered):
    assert choose_weight_repack("on", offered).use_extra_bufts is True
    assert choose_weight_repack("off", offered).use_extra_bufts is False


def test_an_unknown_mode_is_a_clear_error():
    with pytest.raises(ModelError, match="weight_repack must be one of auto, on, off"):
        choose_weight_repack("maybe", ())


def test_the_process_wide_mode_is_used_when_none_is_given(monkeypatch):
    monkeypatch.setattr(llama_load, "_process_mode", "auto")
    llama_load.set_weight_repack("off")
    assert choose_weight_repack(None, ("CPU_REPACK",)).use_extra_bufts is False
    llama_load.set_weight_repack("on")
    assert choose_weight_repack(None, ("AMX",)).use_extra_bufts is True
    assert model_params().use_extra_bufts is True
    with pytest.raises(ModelError):
        llama_load.set_weight_repack("yes")


def test_the_cpu_backend_offers_amx_exactly_when_the_cpu_has_it_and_ggml_was_built_for_it():
    import llama_cpp

    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    built = "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode()
    offered = cpu_extra_buffer_types()
    assert ("AMX" in offered) == ("amx_int8" in flags and built)
    assert model_params("auto").use_extra_bufts is ("AMX" not in offered)


def test_weight_repack_is_a_validated_setting(tmp_path):
    assert load_settings(tmp_path / "absent.toml", environ={}).weight_repack == "auto"
    file = tmp_path / "settings.toml"
    file.write_text('weight_repack = "off"\n')
    assert load_settings(file, environ={}).weight_repack == "off"
    assert load_settings(file, environ={"EDGE_ASSISTANT_WEIGHT_REPACK": "on"}).weight_repack == "on"
    with pytest.raises(SettingsError, match="weight_repack 'sometimes' is not one of auto, on, off"):
        load_settings(file, environ={"EDGE_ASSISTANT_WEIGHT_REPACK": "sometimes"})
