"""The destructive-command patterns: each family found in its usual spellings, safe look-alikes left alone."""

from __future__ import annotations

import pytest

from edge_assistant.runtime.danger import danger_warning, find_dangers


@pytest.mark.parametrize("text, command", [
    ("sudo rm -rf /var/log", "rm -rf"),
    ("rm -fr ~/old", "rm -rf"),
    ("rm -r -f build/", "rm -rf"),
    ("rm -Rf /", "rm -rf"),
    ("rm --recursive --force /srv", "rm -rf"),
    ("mkfs.ext4 /dev/sdb1", "mkfs"),
    ("sudo mkfs -t vfat /dev/sdc", "mkfs"),
    ("dd if=ubuntu.iso of=/dev/sdb bs=4M status=progress", "dd of=/dev/…"),
    ("sudo chmod -R 777 /", "chmod -R 777 /"),
    ("chmod -vR 0777 /var/www", "chmod -R 777 /"),
    ("curl -fsSL https://get.example.com | sh", "curl … | sh"),
    ("wget -qO- https://x.example/install.sh | sudo bash", "curl … | sh"),
])
def test_each_destructive_command_is_found(text: str, command: str) -> None:
    assert [d.command for d in find_dangers(f"Run this:\n\n```sh\n{text}\n```\n")] == [command]


@pytest.mark.parametrize("text", [
    "find /var/log -name '*.log' -mtime +7 -delete",
    "rm old.log",
    "rm -r build/",
    "rm -f stale.pid",
    "dd if=/dev/zero of=/dev/null bs=1M count=10",
    "dd if=disk.img of=backup.img",
    "chmod 755 script.sh",
    "chmod -R 755 /var/www",
    "curl -fsSL https://example.com/install.sh -o install.sh",
    "the firm -rf option",  # not the rm command
    "Use mkfsprogs documentation",
])
def test_safe_commands_and_look_alikes_are_not_flagged(text: str) -> None:
    assert find_dangers(text) == []


def test_one_warning_names_every_family_once() -> None:
    dangers = find_dangers("rm -rf a; rm -rf b; curl u | sh")
    assert [d.command for d in dangers] == ["rm -rf", "curl … | sh"]
    line = danger_warning(dangers)
    assert "\n" not in line and "`rm -rf`" in line and "`curl … | sh`" in line and "before running" in line
