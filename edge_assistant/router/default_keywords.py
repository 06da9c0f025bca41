"""The default keyword table for the demo routes (code, reasoning, automation).

Used by the builder when a recipe gives no table of its own. Weights are
evidence, not votes: the fit learns how much keyword evidence is worth next to
embedding similarity, so rough weights are fine; their *relative* sizes matter.
2-3: nearly unambiguous; 1-1.5: typical of the route; below 1 or negative: hints.
"""

from __future__ import annotations

from .keywords import KeywordRule as R

DEFAULT_KEYWORD_RULES: dict[str, tuple[R, ...]] = {
    "code": (
        # programming languages named outright; 'go' and 'c' are too common alone, see below
        R(r"\b(python|javascript|typescript|java|kotlin|rust|golang|c\+\+|c#|ruby|php|swift|scala|haskell|"
          r"elixir|dart|lua|perl|matlab|fortran|clojure|ocaml|zig)\b", 2.0, "programming language"),
        R(r"\b(in|to|from) (go|c)\b|\b(go|c) (code|program|function)", 1.5,
          "'in Go', 'C code': the short language names only in these phrases"),
        # code vocabulary that rarely appears in ordinary prose
        R(r"\b(function|method|class|struct|interface|enum|variable|constructor|generics?|closure|lambda|"
          r"iterator|decorator|recursion|recursive)\b", 1.5, "program structure"),
        R(r"\b(compile[rd]?|syntax|refactor\w*|debug\w*|stack ?trace|traceback|segfault|segmentation fault|"
          r"null ?pointer|exception|unit tests?|pytest|jest|unittest)\b", 1.5, "writing, fixing and testing code"),
        R(r"\b(bug|code review|pull request|diff|idiomatic)\b", 1.0, "reviewing code"),
        R(r"\b(api|endpoint|sql|query|regex|json|numpy|pandas|react|vue|django|flask|spring|express|"
          r"sqlalchemy|linq)\b", 1.0, "libraries, frameworks and data formats used from code"),
        R(r"\b(linked list|binary (search|tree)|hash ?map|heap|trie|stack|queue|graph|sort(ing)?|"
          r"big-?o|time complexity)\b", 1.0, "data structures and algorithms"),
        R(r"(def |=>|\(\)|\{\s*\}|;\s*$|::|\[\]|!=|==)", 1.5, "code syntax pasted into the message"),
        R(r"\b(typeerror|valueerror|keyerror|indexerror|attributeerror|nullpointerexception|undefined is not)\b", 2.0,
          "error names thrown by code"),
    ),
    "reasoning": (
        # numbers with arithmetic around them are the strongest signal of a quantitative problem
        R(r"\d\s*[-+*/×÷^=]\s*\d", 2.0, "arithmetic between numbers"),
        R(r"\b(solve|calculate|compute|work out|how many|how much|how long|what is the probability|"
          r"percent(age)?|%)", 1.5, "asks for a quantity"),
        R(r"\b(equation|integral|integrate|derivative|limit|matrix|determinant|eigenvalues?|logarithm|"
          r"log(10|2)?|prime|factorial|divisible|remainder|fraction|ratio|average|median|mean|"
          r"standard deviation|sequence|series)\b", 1.5, "mathematics vocabulary"),
        R(r"\b(probability|odds|expected value|combinations?|permutations?|choose)\b", 1.5, "probability"),
        R(r"\b(prove|proof|induction|irrational|theorem)\b", 2.0, "proofs"),
        R(r"\b(puzzle|riddle|logic|knights? and knaves|truth table|syllogism|valid argument|"
          r"weighings?|balance scale)\b", 2.0, "logic puzzles"),
        R(r"\b(can we conclude|does it follow|it follows that|(all|no|some) \w+ are)\b", 1.5,
          "syllogisms: quantified statements and conclusions"),
        R(r"\beach (own|has|have|likes?|lives?)\b.*\bdifferent\b|\bwho (owns|lives)\b.*\?", 1.0,
          "logic-grid puzzles: each person has a different thing"),
        R(r"\b(area|perimeter|volume|angle|triangle|circle|square|hypotenuse|diagonal|radius|diameter)\b",
          1.0, "geometry"),
        R(r"\b(km/h|mph|speed|interest|discount|depreciat\w+|per (hour|year|day))\b", 1.0,
          "word problems: rates, money, time"),
        R(r"\b\d+(\.\d+)?\b.*\b\d+(\.\d+)?\b", 0.5, "two or more numbers in the message"),
        R(r"\bstep by step\b", 0.5, "asks for worked reasoning"),
    ),
    "automation": (
        # the shell and its tools
        R(r"\b(bash|shell|zsh|terminal|command line|one-liner|powershell|batch file|\.sh)\b", 2.0,
          "the shell"),
        R(r"\b(cron(tab)?|systemd|launchd|launch agent|task scheduler|scheduled task|timer|at boot|"
          r"every (night|day|morning|hour|week|\d+ minutes)|nightly|daily|weekly)\b", 2.0, "scheduling"),
        R(r"\b(sudo|chmod|chown|rsync|ssh|scp|sftp|grep|sed|awk|find|tar|ffmpeg|imagemagick|journalctl|"
          r"apt(-get)?|yum|dnf|pacman|brew|ufw|firewalld|iptables|fstab|netplan|nmap|rclone|smartctl)\b",
          2.0, "system tools and package managers"),
        R(r"\b(docker|docker-compose|kubernetes|k8s|ansible|terraform|cloud-init|nginx|fail2ban|logrotate|"
          r"systemctl|service)\b", 1.5, "deployment and service administration"),
        R(r"\b(ci|cd|github actions|gitlab( ci| runner)?|jenkins|pipeline|workflow|pre-commit|"
          r"shellcheck|runner)\b", 1.5, "continuous integration"),
        R(r"\b(automate|automatically|automation|script|backups?|disk (space|usage)|processes|"
          r"port|mount|reboot|server|linux|ubuntu|debian|fedora|centos|macos|windows|raspberry pi)\b",
          1.0, "machine administration"),
        R(r"\b(folder|directory|files)\b", 0.5, "files on a machine: a hint, common in code too"),
    ),
    "none": (
        # everyday requests whose words overlap the other routes ('script' of a play, 'class' at school)
        R(r"\b(poem|haiku|limerick|story|song|essay|letter|email|toast|eulogy|caption|slogan|recipe|"
          r"itinerary|novel|book club)\b", 1.5, "writing and everyday tasks"),
        R(r"\b(history of|who (was|were|is)|capital of|translate)\b", 1.0, "general knowledge"),
    ),
}
