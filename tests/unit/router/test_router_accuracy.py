"""The fitted router against a held-out labelled set it never saw while fitting."""

from __future__ import annotations

from collections import Counter

import pytest

pytestmark = pytest.mark.builder  # the session's router is fitted (and its embedding distilled) here

LABELS = ("code", "reasoning", "automation", "none")


def _confusion_table(pairs: list[tuple[str, str]]) -> str:
    counts = Counter(pairs)
    width = max(map(len, LABELS)) + 2
    lines = ["true \\ routed".ljust(width + 4) + "".join(label.rjust(width) for label in LABELS)]
    for truth in LABELS:
        lines.append(truth.ljust(width + 4) + "".join(str(counts[(truth, got)]).rjust(width) for got in LABELS))
    return "\n".join(lines)


@pytest.mark.slow  # first in the folder: on a machine without the cached distillation it pays ~90 s for it
def test_router_is_at_least_90_percent_accurate_on_the_held_out_set_across_four_classes(router, eval_rows):
    assert len(eval_rows) >= 100
    assert set(r["label"] for r in eval_rows) == set(LABELS)
    pairs = []
    misses = []
    for row in eval_rows:
        decision = router.route(row["prompt"])
        got = decision.modifier or "none"
        pairs.append((row["label"], got))
        if got != row["label"]:
            misses.append(f"  {row['label']:>10} -> {got:<10} {row['prompt'][:70]!r}  [{decision.reason[:90]}]")
    accuracy = sum(t == g for t, g in pairs) / len(pairs)
    hard = [(t, g) for (t, g), row in zip(pairs, eval_rows) if row.get("hard")]
    print(f"\nrouter accuracy on {len(pairs)} held-out prompts: {accuracy:.1%} "
          f"(hard cases: {sum(t == g for t, g in hard)}/{len(hard)})")
    print(_confusion_table(pairs))
    print("misrouted:\n" + "\n".join(misses))
    assert accuracy >= 0.90, f"accuracy {accuracy:.1%} < 90%"
    for label in LABELS:
        rows = [g for t, g in pairs if t == label]
        recall = sum(g == label for g in rows) / len(rows)
        assert recall >= 0.75, f"{label}: only {recall:.0%} of its prompts routed to it"


def test_evaluation_prompts_are_kept_apart_from_the_fitting_prompts(eval_rows):
    from edge_assistant.builder.router_seed import load_examples

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    seed = {norm(p) for prompts in load_examples().values() for p in prompts}
    leaked = [r["prompt"] for r in eval_rows if norm(r["prompt"]) in seed]
    assert leaked == []


def test_fit_report_gives_accuracy_calibration_error_and_a_confusion_over_the_validation_split(router_dir):
    import json

    report = json.loads((router_dir / "fit_report.json").read_text())
    combined = report["validation"]["combined"]
    matrix = combined["confusion"]["matrix"]
    assert combined["confusion"]["rows_true_cols_predicted"] == report["routes"]
    assert sum(map(sum, matrix)) == report["validation_size"]
    diagonal = sum(matrix[i][i] for i in range(len(matrix)))
    assert combined["accuracy"] == pytest.approx(diagonal / report["validation_size"], abs=1e-4)
    assert 0.0 <= combined["expected_calibration_error"] < 0.2
    assert set(report["validation"]) == {"combined", "keyword", "embedding"}
    assert 0.3 <= report["threshold"] <= 0.9


def test_confidence_is_calibrated_enough_that_confident_routes_are_mostly_right(router, eval_rows):
    sure = [(r, router.route(r["prompt"])) for r in eval_rows]
    confident = [(r, d) for r, d in sure if d.confidence >= 0.9]
    assert len(confident) >= len(eval_rows) // 2
    right = sum((d.modifier or "none") == r["label"] for r, d in confident)
    assert right / len(confident) >= 0.95
