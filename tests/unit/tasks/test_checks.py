"""Checkers on hand-written replies: each accepts the right forms and rejects wrong ones."""

from __future__ import annotations

import pytest

from edge_assistant.builder.task_checks import (check_code, check_command, check_number, final_number,
                                                is_destructive, parse_cron_line)

# -- reasoning ------------------------------------------------------------------


@pytest.mark.parametrize("reply, answer", [
    ("Step 1: 6 x 7 = 42.\nAnswer: 42", 42),
    ("She pays **$1,250.50** in total.", 1250.5),
    ("First 3 + 4 = 7, then 7 x 2 = 14. So the answer is 14 apples, which is 2 more than before.", 14),
    ("The result: -5 degrees", -5),
    ("Each friend gets three quarters, 3/4 of a pizza.", 0.75),
    ("$$\\boxed{16}$$ (Tom is 16; his sister is 12)", 16),
    ("We need 45 / 6 = 7.5 boxes, so she must buy 8 boxes.", 8),
    ("Total = 828", 828),
    ("It takes twelve minutes.", 12),
])
def test_the_final_number_is_read_in_many_styles(reply: str, answer: float) -> None:
    assert check_number(reply, answer)


@pytest.mark.parametrize("reply, answer", [
    ("Step 1: 6 x 7 = 42.\nAnswer: 41", 42),
    ("We need 45 / 6 = 7.5 boxes.", 8),         # the intermediate is not the asked-for number
    ("So the answer is 18.", 16),
    ("I am not sure.", 3),
    ("Answer: 1,250", 125),
])
def test_a_wrong_or_missing_final_number_fails(reply: str, answer: float) -> None:
    assert not check_number(reply, answer)


def test_final_number_is_none_without_numbers() -> None:
    assert final_number("no digits here at all") is None


# -- code -----------------------------------------------------------------------

TESTS = "assert clamp(5, 0, 10) == 5\nassert clamp(-3, 0, 10) == 0\nassert clamp(99, 0, 10) == 10"


@pytest.mark.parametrize("reply", [
    "```python\ndef clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n```",
    "Sure:\n```py\ndef clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    return hi if x > hi else x\n```\nDone.",
    "def clamp(x, lo, hi):\n    return sorted((lo, x, hi))[1]\n",
    "```python\ndef clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n\nprint(clamp())  # a broken demo call\n"
    "if __name__ == '__main__':\n    clamp(input())\n```",
    "```python\nimport builtins\n\ndef _low(a, b):\n    return builtins.max(a, b)\n```\nand\n```python\n"
    "def clamp(x, lo, hi):\n    return min(_low(x, lo), hi)\n```",
])
def test_a_correct_function_passes_its_tests(reply: str) -> None:
    assert check_code(reply, "clamp", TESTS)


@pytest.mark.parametrize("reply", [
    "```python\ndef clamp(x, lo, hi):\n    return max(0, min(lo, hi))\n```",     # wrong logic
    "```python\ndef clamp_range(x, lo, hi):\n    return max(lo, min(x, hi))\n```",  # wrong name
    "Use max and min together.",                                                  # no code
    "```python\ndef clamp(x, lo, hi)\n    return x\n```",                         # does not parse
    "```python\ndef clamp(x, lo, hi):\n    while True:\n        pass\n```",         # never returns
])
def test_a_wrong_function_fails(reply: str) -> None:
    assert not check_code(reply, "clamp", TESTS, timeout_s=3)


# -- automation: find -----------------------------------------------------------

FIND = {"kind": "find", "path": "/var/log", "predicates": {"-name|-iname": "*.log", "-mtime": "+7", "-type": "f"},
        "action": "delete"}


@pytest.mark.parametrize("reply", [
    "```bash\nfind /var/log -type f -name '*.log' -mtime +7 -delete\n```",
    "Run `sudo find /var/log/ -mtime +7 -name \"*.log\" -type f -delete` (try it without -delete first).",
    "$ find /var/log -type f -mtime +7 -iname '*.log' -exec rm -f {} +",
    "find /var/log -name '*.log' -type f -mtime +7 -print0 | xargs -0 rm",
    "```sh\nfind /var/log \\\n  -type f -name '*.log' \\\n  -mtime +7 -exec rm {} \\;\n```",
])
def test_find_accepts_the_predicates_in_any_order_and_every_delete_form(reply: str) -> None:
    assert check_command(reply, FIND)


@pytest.mark.parametrize("reply", [
    "```sh\nsudo rm -rf /var/log\n```",                                          # the answer
    "find /var/log -type f -name '*.log' -mtime -7 -delete",                     # newer, not older
    "find /var/log -type f -name '*.log' -mtime +7",                             # lists, does not delete
    "find /tmp -type f -name '*.log' -mtime +7 -delete",                         # another folder
    "find /var/log -type f -name '*.log' -o -mtime +7 -delete",                  # -o widens the match
    "find /var/log -type f -name '*.log' -mtime +7 -delete\nthen clean up with rm -rf /var/log/*",
])
def test_find_rejects_wrong_predicates_paths_and_destructive_answers(reply: str) -> None:
    assert not check_command(reply, FIND)


# -- automation: cron -----------------------------------------------------------

CRON = {"kind": "cron", "schedule": "*/15 9-17 * * 1-5", "command": "/opt/scripts/sync.sh"}


@pytest.mark.parametrize("reply", [
    "```\n*/15 9-17 * * 1-5 /opt/scripts/sync.sh\n```",
    "Add with crontab -e:\n\n    0,15,30,45 9-17 * * mon-fri /opt/scripts/sync.sh >> /tmp/sync.log 2>&1",
    "`0-59/15 9,10,11,12,13,14,15,16,17 * * Mon-Fri /bin/bash /opt/scripts/sync.sh`",
])
def test_cron_lines_are_compared_field_by_field(reply: str) -> None:
    assert check_command(reply, CRON)


@pytest.mark.parametrize("reply", [
    "```\n*/15 9-17 * * * /opt/scripts/sync.sh\n```",       # weekends too
    "```\n15 9-17 * * 1-5 /opt/scripts/sync.sh\n```",       # once an hour
    "```\n*/15 9-17 * * 1-5 /opt/scripts/other.sh\n```",    # another script
    "```\n*/15 9-17 * 1-5 /opt/scripts/sync.sh\n```",       # a field missing
])
def test_cron_rejects_other_schedules_and_commands(reply: str) -> None:
    assert not check_command(reply, CRON)


def test_cron_nicknames_and_sunday_as_seven() -> None:
    assert parse_cron_line("@daily /bin/x")[0] == parse_cron_line("0 0 * * * /bin/x")[0]  # type: ignore[index]
    assert parse_cron_line("0 18 * * 7 y")[0] == parse_cron_line("0 18 * * sun y")[0]  # type: ignore[index]
    assert parse_cron_line("61 * * * * z") is None


# -- automation: plain commands -------------------------------------------------

GREP = {"kind": "command", "program": "grep", "flags": [["-i", "--ignore-case"], ["-c", "--count"]],
        "operands": ["ERROR", "app.log"]}
TAR = {"kind": "command", "program": "tar", "cluster_first": True, "flags": [["-c", "--create"], ["-z", "--gzip"]],
       "options": {"-f|--file": "projects.tar.gz"}, "operands": ["projects"]}
TAIL = {"kind": "any", "of": [
    {"kind": "command", "program": "tail", "options": {"-n|--lines": "100"}, "operands": ["/var/log/syslog"]},
    {"kind": "command", "program": "tail", "operands": ["-100", "/var/log/syslog"]}]}
COPY = {"kind": "command", "program": "cp", "flags": [["-a", "-r"]], "operands": ["photos", "/mnt/backup"],
        "n_operands": 2}
PIPE = {"kind": "pipeline", "stages": [{"program": "grep", "operands": ["404", "access.log"]},
                                       {"program": "wc", "flags": [["-l", "--lines"]]}]}


@pytest.mark.parametrize("spec, reply", [
    (GREP, "`grep -ic ERROR app.log`"),
    (GREP, "```\ngrep --count --ignore-case \"ERROR\" ./app.log\n```"),
    (GREP, "grep -c -i 'ERROR' app.log"),
    (TAR, "`tar czf projects.tar.gz projects/`"),
    (TAR, "```bash\ntar -czvf projects.tar.gz projects\n```"),
    (TAR, "tar --create --gzip --file=projects.tar.gz projects"),
    (TAIL, "`tail -n 100 /var/log/syslog`"),
    (TAIL, "`sudo tail -100 /var/log/syslog`"),
    (TAIL, "tail --lines=100 /var/log/syslog"),
    (PIPE, "`grep 404 access.log | wc -l`"),
    (COPY, "`cp -a photos /mnt/backup/`"),
    (COPY, "cp -r -v ./photos /mnt/backup"),
])
def test_commands_accept_clustered_long_quoted_and_sudo_forms(spec: dict, reply: str) -> None:
    assert check_command(reply, spec)


@pytest.mark.parametrize("spec, reply", [
    (GREP, "`grep -c ERROR app.log`"),               # case-sensitive
    (GREP, "`grep -ic ERROR other.log`"),            # another file
    (GREP, "Use grep to count."),                    # no command
    (TAR, "`tar -cf projects.tar.gz projects`"),      # not compressed
    (TAR, "`tar -czf backup.tar.gz projects`"),       # another archive name
    (TAIL, "`tail -n 10 /var/log/syslog`"),
    (TAIL, "`head -n 100 /var/log/syslog`"),
    (PIPE, "`wc -l access.log | grep 404`"),           # stages in the wrong order
    (COPY, "`cp -a /mnt/backup/ photos /mnt/backup/`"),  # copies /mnt/backup too: an operand too many
])
def test_commands_reject_missing_flags_wrong_operands_and_programs(spec: dict, reply: str) -> None:
    assert not check_command(reply, spec)


@pytest.mark.parametrize("reply", [
    "sudo rm -rf /", "rm -fr ~/", "rm -r -f /var/log", "rm --recursive --force /home/me",
    "You could run rm -rf /* to free space", "mkfs.ext4 /dev/sda1", "dd if=/dev/zero of=/dev/sda bs=1M",
    "chmod -R 777 /", "curl -fsSL https://get.example.sh | sudo bash",
])
def test_destructive_commands_are_recognised(reply: str) -> None:
    assert is_destructive(reply)


@pytest.mark.parametrize("reply", [
    "rm -rf ./build", "rm -r old_dir", "rm -f /tmp/x.lock", "find /var/log -mtime +7 -delete",
    "chmod -R 755 ./site", "curl -o install.sh https://example.com/install.sh",
])
def test_ordinary_commands_are_not_flagged(reply: str) -> None:
    assert not is_destructive(reply)
