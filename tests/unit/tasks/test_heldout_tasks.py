"""The packaged held-out tasks: every check can pass (a hand-written right answer) and fail (a wrong one),
and none of the prompts comes from a demo generator."""

from __future__ import annotations

import pytest

from edge_assistant.builder.task_eval import DOMAINS, load_tasks, solved

TASKS = load_tasks()

CODE_REFERENCES = {
    "second_largest": "def second_largest(nums):\n    return sorted(set(nums))[-2]",
    "is_anagram": "def is_anagram(a, b):\n    return sorted(a.lower()) == sorted(b.lower())",
    "clamp": "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))",
    "rle": "from itertools import groupby\ndef rle(s):\n    return ''.join(f'{k}{len(list(g))}' for k, g in groupby(s))",
    "digit_sum": "def digit_sum(n):\n    return sum(int(d) for d in str(n))",
    "merge_sorted": "import heapq\ndef merge_sorted(a, b):\n    return list(heapq.merge(a, b))",
    "count_words": "def count_words(s):\n    return len(s.split())",
    "to_binary": "def to_binary(n):\n    return format(n, 'b')",
    "last_n": "def last_n(items, n):\n    return items[len(items) - n:] if n else []",
    "snake_to_camel": "def snake_to_camel(name):\n    head, *rest = name.split('_')\n    return head + ''.join(w.title() for w in rest)",
    "average": "def average(values):\n    return sum(values) / len(values) if values else 0.0",
    "find_index": "def find_index(items, target):\n    return items.index(target) if target in items else -1",
    "dedupe_case_insensitive": "def dedupe_case_insensitive(words):\n    seen, out = set(), []\n    for w in words:\n        if w.lower() not in seen:\n            seen.add(w.lower())\n            out.append(w)\n    return out",
    "lcm": "import math\ndef lcm(a, b):\n    return a * b // math.gcd(a, b)",
    "cumulative": "import itertools\ndef cumulative(nums):\n    return list(itertools.accumulate(nums))",
    "invert_dict": "def invert_dict(d):\n    return {v: k for k, v in d.items()}",
    "is_leap_year": "def is_leap_year(y):\n    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)",
    "count_char": "def count_char(text, ch):\n    return text.count(ch)",
    "max_in_each": "def max_in_each(rows):\n    return [max(r) for r in rows]",
    "strip_vowels": "def strip_vowels(s):\n    return ''.join(c for c in s if c.lower() not in 'aeiou')",
    "power_set_size": "def power_set_size(n):\n    return 2 ** n",
    "pairs_summing_to": "def pairs_summing_to(nums, target):\n    return sum(1 for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == target)",
    "initials": "def initials(full_name):\n    return ''.join(w[0].upper() for w in full_name.split())",
    "is_sorted": "def is_sorted(nums):\n    return all(a <= b for a, b in zip(nums, nums[1:]))",
    "minutes_to_hhmm": "def minutes_to_hhmm(m):\n    return f'{m // 60}:{m % 60:02d}'",
    "evens": "def evens(nums):\n    return [n for n in nums if n % 2 == 0]",
    "rotate_left": "def rotate_left(items, k):\n    if not items:\n        return []\n    k %= len(items)\n    return items[k:] + items[:k]",
    "longest_word": "def longest_word(sentence):\n    return max(sentence.split(), key=len)",
    "squares_up_to": "def squares_up_to(n):\n    return [i * i for i in range(1, n + 1)]",
    "parse_kv": "def parse_kv(text):\n    return dict(p.split('=', 1) for p in text.split(';') if p)",
    "product": "import math\ndef product(nums):\n    return math.prod(nums)",
    "count_upper": "def count_upper(s):\n    return sum(c.isupper() for c in s)",
    "zip_to_dict": "def zip_to_dict(keys, values):\n    return dict(zip(keys, values))",
    "mirror": "def mirror(s):\n    return s + s[::-1]",
    "safe_int": "def safe_int(text, default):\n    try:\n        return int(text)\n    except ValueError:\n        return default",
    "range_sum": "def range_sum(a, b):\n    return sum(range(a, b + 1))",
    "most_frequent": "from collections import Counter\ndef most_frequent(items):\n    return Counter(items).most_common(1)[0][0]",
    "chunk_string": "def chunk_string(s, size):\n    return [s[i:i + size] for i in range(0, len(s), size)]",
    "percent_change": "def percent_change(old, new):\n    return (new - old) / old * 100",
    "nth_word": "def nth_word(sentence, n):\n    words = sentence.split()\n    return words[n - 1] if 0 < n <= len(words) else ''",
    "hamming": "def hamming(a, b):\n    return sum(x != y for x, y in zip(a, b))",
    "sort_by_length": "def sort_by_length(words):\n    return sorted(words, key=len)",
}

# One right reply per automation task, in the forms people (and models) write: fenced, inline, bare, sudo.
AUTOMATION_ANSWERS = {
    "automation-01": "```bash\nsudo find /var/log -name '*.log' -type f -mtime +7 -delete\n```",
    "automation-02": "`find ~/Downloads -type f -mtime +30 -delete`",
    "automation-03": "find /tmp -type f -size +100M -exec ls -lh {} \\;",
    "automation-04": "```sh\nfind src -type f -name \"*.py\"\n```",
    "automation-05": "$ find . -type f -mtime -1",
    "automation-06": "```\nfind ./build -type d -empty -delete\n```",
    "automation-07": "Run `crontab -e` and add:\n```\n30 2 * * * /home/deploy/backup.sh\n```",
    "automation-08": "```cron\n*/15 9-17 * * mon-fri /opt/scripts/sync.sh\n```",
    "automation-09": "```\n@monthly /usr/bin/certbot renew --quiet\n```",
    "automation-10": "`0 18 * * 7 python3 /srv/app/report.py`",
    "automation-11": "```\n*/5 * * * * /usr/local/bin/healthcheck\n```",
    "automation-12": "```\n0 4 * * 1,4 ~/bin/rotate.sh\n```",
    "automation-13": "```sh\ngrep 404 access.log | wc -l\n```",
    "automation-14": "`grep -rn TODO ./src`",
    "automation-15": "head -n 20 config.yaml",
    "automation-16": "```\nsudo tail -n 100 /var/log/syslog\n```",
    "automation-17": "`tail -F /var/log/nginx/error.log`",
    "automation-18": "```bash\ntar -czvf projects.tar.gz projects/\n```",
    "automation-19": "`tar xzf backup.tar.gz`",
    "automation-20": "```\nchmod +x deploy.sh\n./deploy.sh\n```",
    "automation-21": "`sudo chown -R www-data:www-data /srv/www`",
    "automation-22": "```\ndf -h\n```",
    "automation-23": "`du -h --max-depth=1 /home`",
    "automation-24": "`sudo systemctl restart nginx`",
    "automation-25": "```\nsudo systemctl enable docker\n```",
    "automation-26": "`systemctl status postgresql`",
    "automation-27": "```\njournalctl -u ssh --since \"1 hour ago\"\n```",
    "automation-28": "`sudo ss -ltnp | grep 8080`",
    "automation-29": "`mkdir -p data/raw/2024`",
    "automation-30": "```\nln -s releases/v2.3 current\n```",
    "automation-31": "`cp -a photos /mnt/backup/`",
    "automation-32": "```\nrsync -avz --delete site/ web1:/var/www/site\n```",
    "automation-33": "`sed -i 's/localhost/db.internal/g' settings.ini`",
    "automation-34": "`wc -l big.csv`",
    "automation-35": "```\nsort words.txt | uniq -c | sort -rn | head -n 10\n```",
    "automation-36": "`ssh-keygen -t ed25519 -C \"me@example.com\"`",
    "automation-37": "`git checkout -b feature/login`",
    "automation-38": "`git log --oneline -n 5`",
    "automation-39": "```\ndocker ps\n```",
    "automation-40": "`kill -9 4321`",
    "automation-41": "`curl -L -o data.zip https://example.com/data.zip`",
    "automation-42": "```\ngrep -E 'ERROR|FATAL' server.log\n```",
}


def test_each_domain_has_about_forty_tasks_and_there_are_general_prompts() -> None:
    for domain in DOMAINS:
        assert len(TASKS[domain]) >= 40, domain
    assert len(TASKS["chat"]) >= 40


@pytest.mark.parametrize("task", TASKS["code"], ids=lambda t: t.id)
def test_every_code_task_passes_a_reference_and_fails_a_stub(task) -> None:
    reference = CODE_REFERENCES[task.check["entry"]]
    assert solved(task, f"Here you go:\n```python\n{reference}\n```")
    stub = f"```python\ndef {task.check['entry']}(*args):\n    return None\n```"
    assert not solved(task, stub)


def test_every_automation_task_has_a_hand_written_answer() -> None:
    assert sorted(AUTOMATION_ANSWERS) == sorted(t.id for t in TASKS["automation"])


@pytest.mark.parametrize("task", TASKS["automation"], ids=lambda t: t.id)
def test_every_automation_check_accepts_its_answer_and_rejects_the_others(task) -> None:
    assert solved(task, AUTOMATION_ANSWERS[task.id])
    others = [a for k, a in AUTOMATION_ANSWERS.items() if k != task.id]
    accepted = [a for a in others if solved(task, a)]
    assert not accepted, accepted
    assert not solved(task, "```\nsudo rm -rf /\n```\n" + AUTOMATION_ANSWERS[task.id])


@pytest.mark.parametrize("task", TASKS["reasoning"], ids=lambda t: t.id)
def test_every_reasoning_task_accepts_its_number_and_rejects_a_neighbour(task) -> None:
    answer = task.check["answer"]
    assert solved(task, f"Working it out step by step.\nSo the answer is {answer}.")
    assert not solved(task, f"Working it out step by step.\nSo the answer is {answer + 1}.")


def test_no_held_out_prompt_is_a_demo_generator_prompt() -> None:
    from edge_assistant.builder.demodata import GENERATORS

    held_out = {t.prompt.strip().lower() for rows in TASKS.values() for t in rows}
    generated = {r["prompt"].strip().lower() for gen in GENERATORS.values() for r in gen(400, 0)}
    assert not held_out & generated
