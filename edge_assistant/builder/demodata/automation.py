"""Shell, cron, systemd and CI tasks from a table of commands we wrote and checked by hand."""

from __future__ import annotations

import random

_FILES = ("app.log", "report.csv", "notes.txt", "data.json", "server.log", "config.yaml")  # text files: grep/sed/wc make sense
_DIRS = ("/var/log", "~/projects", "/srv/data", "./build", "/tmp/cache", "~/Downloads")
_PATTERNS = ("ERROR", "timeout", "TODO", "failed", "WARNING")
_SERVICES = ("nginx", "postgresql", "redis", "myapp", "docker")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

# (prompt template, answer template): {f} file, {d} dir, {p} pattern, {s} service, {n} number.
# One row per task; each answer is the command plus one line on why it is shaped that way.
_SHELL = [
    ("How do I count the lines in {f}?", "```sh\nwc -l {f}\n```\n`wc -l` prints the number of newline characters, i.e. lines."),
    ("Find all lines containing '{p}' in {f}, ignoring case.", "```sh\ngrep -i '{p}' {f}\n```\n`-i` makes the match case-insensitive."),
    ("Show the last {n} lines of {f} and keep following new lines.", "```sh\ntail -n {n} -f {f}\n```\n`-n {n}` picks how many lines, `-f` keeps the file open and prints what is appended."),
    ("List the {n} largest files under {d}.", "```sh\nfind {d} -type f -printf '%s %p\\n' | sort -rn | head -n {n}\n```\n`find` prints size and path, `sort -rn` orders by size descending, `head` keeps {n}."),
    ("Delete files older than {n} days in {d}.", "```sh\nfind {d} -type f -mtime +{n} -delete\n```\n`-mtime +{n}` matches files modified more than {n} days ago; run it without `-delete` first to check."),
    ("Count how many lines in {f} contain '{p}'.", "```sh\ngrep -c '{p}' {f}\n```\n`-c` prints the count of matching lines instead of the lines."),
    ("Make a compressed archive of {d}.", "```sh\ntar -czf archive.tar.gz {d}\n```\n`-c` creates, `-z` compresses with gzip, `-f` names the output file."),
    ("Show disk usage of each folder in {d}, human readable.", "```sh\ndu -h --max-depth=1 {d}\n```\n`-h` prints sizes like 1.5G, `--max-depth=1` stops at the first level."),
    ("Replace every '{p}' with 'OK' in {f}, in place.", "```sh\nsed -i 's/{p}/OK/g' {f}\n```\n`-i` edits the file in place, the `g` flag replaces every match on a line."),
    ("Which process is listening on port {port}?", "```sh\nss -ltnp 'sport = :{port}'\n```\n`-l` listening, `-t` TCP, `-n` numeric ports, `-p` shows the owning process."),
    ("Make {f} executable for its owner.", "```sh\nchmod u+x {f}\n```\n`u+x` adds execute permission for the owner only."),
    ("Find files named '*.{ext}' under {d}.", "```sh\nfind {d} -type f -name '*.{ext}'\n```\nQuote the pattern so the shell does not expand it first."),
]
_SYSTEMD = [
    ("Restart the {s} service and check that it is running.", "```sh\nsudo systemctl restart {s}\nsystemctl status {s} --no-pager\n```\n`status` shows whether it is active and the last log lines."),
    ("Make {s} start automatically at boot.", "```sh\nsudo systemctl enable --now {s}\n```\n`enable` adds it to the boot target, `--now` also starts it immediately."),
    ("Show the last {n} log lines of the {s} service.", "```sh\njournalctl -u {s} -n {n} --no-pager\n```\n`-u` filters by unit, `-n` limits the number of lines."),
    ("Follow the logs of {s} live.", "```sh\njournalctl -u {s} -f\n```\n`-f` follows the journal like `tail -f`."),
]
_CI = [
    ("Write a GitHub Actions job that runs pytest on Python {py}.",
     "```yaml\non: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5\n        with:\n          python-version: \"{py}\"\n      - run: pip install -e .[dev]\n      - run: pytest -q\n```\nIt runs on every push and pull request."),
    ("Write a GitHub Actions workflow that runs `make lint` only on pull requests.",
     "```yaml\non: pull_request\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: make lint\n```\n`on: pull_request` limits it to pull requests."),
]


def _cron(rng: random.Random) -> dict[str, str]:
    minute, hour = rng.choice((0, 5, 15, 30, 45)), rng.randint(0, 23)
    kind = rng.choice(("daily", "weekly", "hourly", "every"))
    script = rng.choice(("/usr/local/bin/backup.sh", "~/bin/cleanup.sh", "/opt/app/report.py"))
    if kind == "daily":
        expr, when = f"{minute} {hour} * * *", f"every day at {hour:02d}:{minute:02d}"
    elif kind == "weekly":
        day = rng.randint(0, 6)
        expr, when = f"{minute} {hour} * * {day}", f"every {_DAYS[day]} at {hour:02d}:{minute:02d}"
    elif kind == "hourly":
        expr, when = f"{minute} * * * *", f"every hour at minute {minute}"
    else:
        step = rng.choice((5, 10, 15, 20, 30))
        expr, when = f"*/{step} * * * *", f"every {step} minutes"
    prompt = rng.choice((f"Write a cron entry that runs {script} {when}.",
                         f"How do I schedule {script} to run {when} with cron?"))
    response = (f"Add this line with `crontab -e`:\n```\n{expr} {script}\n```\n"
                f"Fields: minute hour day-of-month month day-of-week; `{expr}` means {when}.")
    return {"prompt": prompt, "response": response}


def _from_table(rng: random.Random, table: list[tuple[str, str]]) -> dict[str, str]:
    prompt, answer = rng.choice(table)
    values = {"f": rng.choice(_FILES), "d": rng.choice(_DIRS), "p": rng.choice(_PATTERNS),
              "s": rng.choice(_SERVICES), "n": rng.choice((5, 10, 20, 30, 50)),
              "port": rng.choice((80, 443, 5432, 8080, 6379)), "ext": rng.choice(("py", "log", "md", "json")),
              "py": rng.choice(("3.10", "3.11", "3.12"))}
    return {"prompt": prompt.format(**values), "response": answer.format(**values)}


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        pick = i % 6
        if pick in (0, 1, 2):
            rows.append(_from_table(rng, _SHELL))
        elif pick == 3:
            rows.append(_cron(rng))
        elif pick == 4:
            rows.append(_from_table(rng, _SYSTEMD))
        else:
            rows.append(_from_table(rng, _CI) if rng.random() < 0.3 else _cron(rng))
    return rows
