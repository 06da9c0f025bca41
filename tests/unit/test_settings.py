from __future__ import annotations

import pytest

from edge_assistant import paths
from edge_assistant.errors import SettingsError
from edge_assistant.settings import Settings, load_settings, with_overrides


def test_settings_file_then_environment_override_defaults(tmp_path):
    file = tmp_path / "settings.toml"
    file.write_text('threads = 3\nmax_tokens = 64\nsystem_prompt = "Be brief."\n')
    s = load_settings(file, environ={"EDGE_ASSISTANT_THREADS": "2", "EDGE_ASSISTANT_TEMPERATURE": "0"})
    assert (s.threads, s.max_tokens, s.temperature, s.system_prompt) == (2, 64, 0.0, "Be brief.")
    assert s.top_p == Settings().top_p


def test_an_unknown_key_in_the_settings_file_is_an_error_that_lists_known_keys(tmp_path):
    file = tmp_path / "settings.toml"
    file.write_text("thread = 2\n")
    with pytest.raises(SettingsError, match="unknown setting 'thread'.*threads"):
        load_settings(file, environ={})


def test_a_badly_typed_environment_variable_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match=r"\$EDGE_ASSISTANT_MAX_TOKENS"):
        load_settings(tmp_path / "absent.toml", environ={"EDGE_ASSISTANT_MAX_TOKENS": "many"})


def test_invalid_toml_is_reported_with_its_path(tmp_path):
    file = tmp_path / "settings.toml"
    file.write_text("threads = = 2\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(file, environ={})


def test_flags_override_settings_and_are_validated():
    s = with_overrides(Settings(), temperature=0.0, max_tokens=None)
    assert s.temperature == 0.0 and s.max_tokens == Settings().max_tokens
    with pytest.raises(SettingsError):
        with_overrides(Settings(), top_p=1.5)


def test_every_setting_has_help_text():
    assert all(Settings.fields_help().values())


def test_paths_follow_edge_assistant_home(edge_home):
    assert paths.settings_file() == edge_home / "config" / "settings.toml"
    assert paths.bases_cache_dir() == edge_home / "cache" / "bases"
    assert all(str(p).startswith(str(edge_home)) for p in paths.all_paths().values())


def test_kv_state_mb_comes_from_the_environment_and_must_not_be_negative(tmp_path):
    missing = tmp_path / "none.toml"
    assert load_settings(missing, environ={}).kv_state_mb == Settings().kv_state_mb > 0
    assert load_settings(missing, environ={"EDGE_ASSISTANT_KV_STATE_MB": "0"}).kv_state_mb == 0
    with pytest.raises(SettingsError, match="kv_state_mb -1 is negative"):
        load_settings(missing, environ={"EDGE_ASSISTANT_KV_STATE_MB": "-1"})
