"""Shell, cron, systemd, git and CI tasks from tables of commands we wrote and checked by hand.

Each task family has several phrasings of the request and one command; answers
come in several natural styles (a fenced block with a reason, a one-line inline
command, "Run:" and a block, a dry run first). Requests to delete or free space
get a bounded, reviewable command (``find DIR -mtime +N -delete``, a listing
first), never ``rm -rf`` on a whole tree.
"""

from __future__ import annotations

import random
from typing import Callable

_FILES = ("app.log", "report.csv", "notes.txt", "data.json", "server.log", "config.yaml", "events.log",
          "users.csv", "build.log", "output.txt", "requirements.txt", "error.log")
_DIRS = ("/var/log", "~/projects", "/srv/data", "./build", "/tmp/cache", "~/Downloads", "/opt/app/logs",
         "./dist", "~/Pictures", "/var/backups", "./node_modules", "/data/exports")
_PATTERNS = ("ERROR", "timeout", "TODO", "failed", "WARNING", "denied", "panic", "Exception")
_SERVICES = ("nginx", "postgresql", "redis", "myapp", "docker", "apache2", "ssh", "cron", "mysql", "grafana-server")
_EXTS = ("py", "log", "md", "json", "tmp", "bak", "csv", "jpg")
_USERS = ("alice", "deploy", "www-data", "backup", "svc")
_BRANCHES = ("fix/typo", "feature/search", "release-2.1", "hotfix/login", "docs/readme")
_HOSTS = ("backup01", "web2", "db.internal", "files.example.org")
_URLS = ("https://example.com/archive.tar.gz", "https://downloads.example.org/tool.deb",
         "https://example.net/dataset.csv")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

# (phrasings, command, why): {f} file, {d} dir, {p} pattern, {s} service, {n} number, {port}, {ext},
# {u} user, {b} branch, {h} host, {url}, {size} megabytes, {pid}. Every command was checked by hand.
_TASKS: list[tuple[tuple[str, ...], str, str]] = [
    (("How do I count the lines in {f}?", "number of lines in {f}?", "Get the line count of {f}.",
      "tell me how many lines {f} has"),
     "wc -l {f}", "`wc -l` counts newline characters, i.e. lines."),
    (("Find all lines containing '{p}' in {f}, ignoring case.", "case-insensitive search for {p} in {f}",
      "grep {f} for {p}, upper or lower case", "Show lines of {f} that mention {p} in any case."),
     "grep -i '{p}' {f}", "`-i` makes the match case-insensitive."),
    (("Count how many lines in {f} contain '{p}'.", "how many times does {p} show up in {f} (lines)?",
      "number of {p} lines in {f}"),
     "grep -c '{p}' {f}", "`-c` prints the number of matching lines instead of the lines."),
    (("Search recursively under {d} for '{p}' and show line numbers.", "which files in {d} mention {p}? with line numbers",
      "grep through {d} for {p}, recursively"),
     "grep -rn '{p}' {d}", "`-r` descends into folders, `-n` prefixes each match with its line number."),
    (("Show the first {n} lines of {f}.", "print the top {n} lines of {f}", "peek at the beginning of {f}: {n} lines"),
     "head -n {n} {f}", "`-n {n}` sets how many lines from the start."),
    (("Show the last {n} lines of {f}.", "print the final {n} lines of {f}", "tail of {f}, {n} lines"),
     "tail -n {n} {f}", "`-n {n}` sets how many lines from the end."),
    (("Follow {f} as it grows.", "watch new lines being appended to {f}", "live view of {f}"),
     "tail -f {f}", "`-f` keeps the file open and prints what is appended (Ctrl-C to stop)."),
    (("Delete files older than {n} days in {d}.", "clean out {d}: remove files not modified in {n} days",
      "free up space in {d} by removing files older than {n} days", "purge old files (>{n} days) from {d}"),
     "find {d} -type f -mtime +{n} -delete",
     "`-mtime +{n}` matches files modified more than {n} days ago; run it once without `-delete` to see the list."),
    (("Remove the .{ext} files in {d} that are older than {n} days.", "delete stale *.{ext} files under {d} (older than {n} days)",
      "get rid of {n}-day-old .{ext} files in {d}"),
     "find {d} -type f -name '*.{ext}' -mtime +{n} -delete",
     "Only regular files named *.{ext} and older than {n} days are deleted; drop `-delete` first to review them."),
    (("My disk is full because of {d}. How do I clear it safely?", "wipe the old stuff in {d} without breaking anything",
      "Delete everything in {d}."),
     "du -sh {d}\nfind {d} -type f -mtime +{n} -print\nfind {d} -type f -mtime +{n} -delete",
     "Check the size, list what would go, then delete only files older than {n} days. Never `rm -rf` a whole "
     "system folder: programs expect it to exist."),
    (("List files bigger than {size} MB under {d}.", "which files in {d} are over {size} megabytes?",
      "find large files (> {size}M) in {d}"),
     "find {d} -type f -size +{size}M", "`-size +{size}M` matches files larger than {size} MiB."),
    (("Find files named '*.{ext}' under {d}.", "list every .{ext} file below {d}", "where are the {ext} files in {d}?"),
     "find {d} -type f -name '*.{ext}'", "Quote the pattern so the shell does not expand it first."),
    (("Which files in {d} changed in the last {n} minutes?", "recently modified files under {d} ({n} min)"),
     "find {d} -type f -mmin -{n}", "`-mmin -{n}` matches files modified less than {n} minutes ago."),
    (("Delete empty folders under {d}.", "remove all empty directories in {d}"),
     "find {d} -type d -empty -delete", "`-empty` with `-type d` matches only empty directories."),
    (("List the {n} largest files under {d}.", "top {n} biggest files in {d}"),
     "find {d} -type f -printf '%s %p\\n' | sort -rn | head -n {n}",
     "`find` prints size and path, `sort -rn` orders by size descending, `head` keeps {n}."),
    (("Make a compressed archive of {d}.", "tar and gzip {d} into backup.tar.gz", "zip up {d} as a .tar.gz"),
     "tar -czf backup.tar.gz {d}", "`-c` creates, `-z` compresses with gzip, `-f` names the output file."),
    (("Extract archive.tar.gz here.", "unpack archive.tar.gz", "how do I open a .tar.gz file (archive.tar.gz)?"),
     "tar -xzf archive.tar.gz", "`-x` extracts, `-z` decompresses gzip, `-f` names the archive."),
    (("Show disk usage of each folder in {d}, human readable.", "how big is every subfolder of {d}?",
      "folder sizes inside {d}"),
     "du -h --max-depth=1 {d}", "`-h` prints sizes like 1.5G, `--max-depth=1` stops at the first level."),
    (("How much disk space is free?", "check free space on all drives", "is my disk full?"),
     "df -h", "`-h` shows sizes in K, M and G; look at the Use% column."),
    (("Replace every '{p}' with 'OK' in {f}, in place.", "substitute {p} -> OK throughout {f} (edit the file)",
      "in {f}, change all {p} to OK"),
     "sed -i 's/{p}/OK/g' {f}", "`-i` edits the file in place, the `g` flag replaces every match on a line."),
    (("Which process is listening on port {port}?", "what is using port {port}?", "who owns TCP port {port}?"),
     "sudo ss -ltnp 'sport = :{port}'", "`-l` listening, `-t` TCP, `-n` numeric ports, `-p` shows the owning process."),
    (("Make {f} executable for its owner.", "give {f} execute permission", "chmod so I can run {f}"),
     "chmod u+x {f}", "`u+x` adds execute permission for the owner only."),
    (("Give {u} ownership of {d}, recursively.", "change owner of {d} and its contents to {u}"),
     "sudo chown -R {u}:{u} {d}", "`-R` applies it to everything inside; `user:group` sets both."),
    (("Create the folder {d}/a/b, parents included.", "mkdir with all missing parent folders: {d}/a/b"),
     "mkdir -p {d}/a/b", "`-p` creates missing parents and does not fail if it exists."),
    (("Make a symlink named latest pointing to {d}.", "create a soft link latest -> {d}"),
     "ln -s {d} latest", "`-s` makes a symbolic link: target first, then the link name."),
    (("Copy {d} to {h} with rsync.", "sync {d} to the server {h}", "back up {d} to {h} over ssh"),
     "rsync -avz {d}/ {h}:/backup/", "`-a` keeps permissions and times, `-z` compresses, the trailing slash copies the contents."),
    (("Copy the folder {d} into /mnt/usb.", "duplicate {d} to /mnt/usb, keeping attributes"),
     "cp -a {d} /mnt/usb/", "`-a` copies recursively and keeps permissions, owners and times."),
    (("Sort {f} and count duplicate lines.", "most frequent lines of {f} with counts"),
     "sort {f} | uniq -c | sort -rn | head", "`uniq -c` counts adjacent duplicates, so sort first; `sort -rn` puts the most common on top."),
    (("Download {url}.", "fetch {url} from the command line", "save {url} to a file"),
     "curl -L -O {url}", "`-L` follows redirects, `-O` keeps the remote file name."),
    (("Create a new SSH key.", "generate an ssh key pair", "make me an ed25519 key"),
     "ssh-keygen -t ed25519 -C \"you@example.com\"", "ed25519 keys are short and strong; the comment labels the key."),
    (("Stop process {pid}.", "kill PID {pid}", "end the process with id {pid}"),
     "kill {pid}", "This sends SIGTERM so it can clean up; use `kill -9 {pid}` only if it ignores that."),
    (("Force-kill the stuck process {pid}.", "{pid} won't die, kill it hard"),
     "kill -9 {pid}", "`-9` (SIGKILL) cannot be caught or ignored."),
    (("Create and switch to a git branch {b}.", "new branch {b} in git", "start working on a branch called {b}"),
     "git switch -c {b}", "`-c` creates the branch; `git checkout -b {b}` does the same on older git."),
    (("Show the last {n} git commits briefly.", "compact git history, {n} commits", "one-line log of the last {n} commits"),
     "git log --oneline -n {n}", "`--oneline` prints the short hash and subject, `-n {n}` limits the count."),
    (("Undo my uncommitted changes to {f} in git.", "discard local edits of {f} (git)"),
     "git restore {f}", "This resets the file to the last commit; the edits are lost, so check `git diff {f}` first."),
    (("List running docker containers.", "what containers are up?", "docker: show active containers"),
     "docker ps", "Add `-a` to include stopped containers."),
    (("Show logs of the docker container {s}.", "tail the output of container {s}"),
     "docker logs -f --tail {n} {s}", "`--tail {n}` starts from the last {n} lines, `-f` follows."),
]

_SYSTEMD: list[tuple[tuple[str, ...], str, str]] = [
    (("Restart the {s} service and check that it is running.", "bounce {s} and confirm it came back",
      "restart {s} (systemd)"),
     "sudo systemctl restart {s}\nsystemctl status {s} --no-pager", "`status` shows whether it is active and the last log lines."),
    (("Make {s} start automatically at boot.", "enable {s} on startup", "start {s} now and after every reboot"),
     "sudo systemctl enable --now {s}", "`enable` adds it to the boot target, `--now` also starts it immediately."),
    (("Is {s} running?", "check the state of the {s} service", "status of {s}?"),
     "systemctl status {s}", "Look for `Active: active (running)`."),
    (("Stop {s} and keep it from starting at boot.", "disable {s} completely"),
     "sudo systemctl disable --now {s}", "`disable` removes it from boot, `--now` stops it as well."),
    (("Show the last {n} log lines of the {s} service.", "recent {s} logs ({n} lines)", "journal of {s}, last {n} entries"),
     "journalctl -u {s} -n {n} --no-pager", "`-u` filters by unit, `-n` limits the number of lines."),
    (("Follow the logs of {s} live.", "stream the {s} journal"),
     "journalctl -u {s} -f", "`-f` follows the journal like `tail -f`."),
    (("Show {s} logs from the last {n} minutes.", "what did {s} log in the past {n} minutes?"),
     "journalctl -u {s} --since \"{n} minutes ago\"", "`--since` takes relative times like \"{n} minutes ago\"."),
]

_CI: list[tuple[tuple[str, ...], str, str]] = [
    (("Write a GitHub Actions job that runs pytest on Python {py}.", "CI workflow: pytest on {py} for every push"),
     "on: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
     "      - uses: actions/setup-python@v5\n        with:\n          python-version: \"{py}\"\n"
     "      - run: pip install -e .[dev]\n      - run: pytest -q", "It runs on every push and pull request."),
    (("Write a GitHub Actions workflow that runs `make lint` only on pull requests.",),
     "on: pull_request\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
     "      - run: make lint", "`on: pull_request` limits it to pull requests."),
]


def _values(rng: random.Random) -> dict[str, object]:
    return {"f": rng.choice(_FILES), "d": rng.choice(_DIRS), "p": rng.choice(_PATTERNS), "s": rng.choice(_SERVICES),
            "n": rng.choice((3, 5, 7, 10, 14, 20, 30, 50, 90)), "port": rng.choice((80, 443, 3000, 5432, 8000, 8443, 6379, 9090)),
            "ext": rng.choice(_EXTS), "u": rng.choice(_USERS), "b": rng.choice(_BRANCHES), "h": rng.choice(_HOSTS),
            "url": rng.choice(_URLS), "size": rng.choice((50, 100, 200, 500, 1000)), "pid": rng.randint(1200, 98000),
            "py": rng.choice(("3.10", "3.11", "3.12", "3.13"))}


def _styled(rng: random.Random, command: str, why: str, lang: str = "sh") -> str:
    """The same answer in one of several natural styles."""
    single = "\n" not in command
    styles: list[Callable[[], str]] = [
        lambda: f"```{lang}\n{command}\n```\n{why}",
        lambda: f"Run:\n\n```{lang}\n{command}\n```\n\n{why}",
        lambda: f"{why}\n\n```{lang}\n{command}\n```",
    ]
    if single:
        styles += [lambda: f"`{command}`: {why[0].lower() + why[1:]}",
                   lambda: f"Use `{command}`. {why}"]
    return rng.choice(styles)()


def _from_table(rng: random.Random, table: list[tuple[tuple[str, ...], str, str]], lang: str = "sh") -> dict[str, str]:
    phrasings, command, why = rng.choice(table)
    values = _values(rng)
    prompt = rng.choice(phrasings).format(**values)
    if rng.random() < 0.3:
        prompt = prompt[0].lower() + prompt[1:]
    return {"prompt": prompt, "response": _styled(rng, command.format(**values), why.format(**values), lang)}


_CRON_PHRASES = ("Write a cron entry that runs {script} {when}.", "How do I schedule {script} to run {when} with cron?",
                 "crontab line: {script}, {when}", "I want cron to start {script} {when}.",
                 "Run {script} {when} -- what do I put in crontab?")


def _cron(rng: random.Random) -> dict[str, str]:
    minute, hour = rng.choice((0, 5, 10, 15, 20, 30, 45)), rng.randint(0, 23)
    script = rng.choice(("/usr/local/bin/backup.sh", "~/bin/cleanup.sh", "/opt/app/report.py", "/srv/jobs/export.sh",
                         "/home/ops/rotate-logs.sh", "python3 /opt/tools/sync.py"))
    kind = rng.choice(("daily", "weekly", "hourly", "every", "weekdays", "monthly", "days", "hours"))
    if kind == "daily":
        expr, when = f"{minute} {hour} * * *", rng.choice((f"every day at {hour:02d}:{minute:02d}", f"daily at {hour}:{minute:02d}"))
    elif kind == "weekly":
        day = rng.randint(0, 6)
        expr, when = f"{minute} {hour} * * {day}", f"every {_DAYS[day]} at {hour:02d}:{minute:02d}"
    elif kind == "hourly":
        expr, when = f"{minute} * * * *", rng.choice((f"every hour at minute {minute}", f"hourly, {minute} past the hour"))
    elif kind == "every":
        step = rng.choice((2, 5, 10, 15, 20, 30))
        expr, when = f"*/{step} * * * *", rng.choice((f"every {step} minutes", f"each {step} min"))
    elif kind == "weekdays":
        expr, when = f"{minute} {hour} * * 1-5", f"on weekdays at {hour:02d}:{minute:02d}"
    elif kind == "monthly":
        dom = rng.choice((1, 10, 15, 28))
        expr, when = f"{minute} {hour} {dom} * *", f"on day {dom} of every month at {hour:02d}:{minute:02d}"
    elif kind == "days":
        a, b = sorted(rng.sample(range(7), 2))
        expr, when = f"{minute} {hour} * * {a},{b}", f"on {_DAYS[a]}s and {_DAYS[b]}s at {hour:02d}:{minute:02d}"
    else:
        lo = rng.randint(6, 10)
        hi = lo + rng.randint(6, 10)
        expr, when = f"{minute} {lo}-{hi} * * *", f"at minute {minute} of every hour from {lo}:00 to {hi}:00"
    prompt = rng.choice(_CRON_PHRASES).format(script=script, when=when)
    fields = "minute hour day-of-month month day-of-week"
    response = rng.choice((
        f"Add this line with `crontab -e`:\n```\n{expr} {script}\n```\nFields: {fields}; `{expr}` means {when}.",
        f"```\n{expr} {script}\n```\nThe five fields are {fields}, so this runs {when}. Edit with `crontab -e`.",
        f"`{expr} {script}` (put it in `crontab -e`): it runs {when}.",
    ))
    return {"prompt": prompt, "response": response}


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        pick = i % 8
        if pick in (0, 1, 2, 3, 4):
            rows.append(_from_table(rng, _TASKS))
        elif pick == 5:
            rows.append(_cron(rng))
        elif pick == 6:
            rows.append(_from_table(rng, _SYSTEMD))
        else:
            rows.append(_from_table(rng, _CI, "yaml") if rng.random() < 0.15 else _cron(rng))
    return rows
