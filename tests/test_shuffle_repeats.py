"""--shuffle-choices K, --repeats K and calibration figures (issue 16 items 5-7): each item is
expanded into K items of its own (``<id>#p<k>`` / ``<id>#r<k>``), so records, resume and
``score`` work unchanged; the figures sit beside ``acc`` under their own names and protocols, and
``check`` compares them as their own metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chimed_eval.reports.check import metric_direction
from chimed_eval.cli.app import main
from chimed_eval.core.errors import ConfigError
from chimed_eval.evidence.expand import expand_repeats, expand_shuffled, letters_of, mc_generation_config
from chimed_eval.metrics.repeats import majority_answer
from chimed_eval.engine.runner import RunSettings, item_seed, prepare
from chimed_eval.task.options import TaskData
from chimed_eval.core.types import GenerationConfig, Sample
from conftest import write_exam_csv

EXAM_CYCLE = "ABCDDCBA"  # gold letters of the synthetic exam, item i -> EXAM_CYCLE[i % 8]


# --- expansion, as data tables ------------------------------------------------------------------------

CHOICES = ("甲", "乙", "丙", "丁")
# circular: the item's four rotations (CircularEval); rotation r shows original (j + r) % 4 at j
ROTATIONS = [  # (k, shown options, gold 2 shown at, multi-answer gold (0, 2) shown at)
    (0, ("甲", "乙", "丙", "丁"), 2, (0, 2)),
    (1, ("乙", "丙", "丁", "甲"), 1, (1, 3)),
    (2, ("丙", "丁", "甲", "乙"), 0, (0, 2)),
    (3, ("丁", "甲", "乙", "丙"), 3, (1, 3)),
]


@pytest.mark.parametrize("k,shown,gold,multi", ROTATIONS)
def test_rotations_move_every_gold_index_with_its_option(k, shown, gold, multi):
    single = expand_shuffled([Sample("q1", "题", CHOICES, 2, "s")], "circular", 1234, "t")[k]
    assert (single.id, single.choices, single.target, single.subject) == (f"q1#p{k}", shown, gold, "s")
    assert single.metadata["shuffle"] == {"of": "q1", "k": k, "permutation": [(j + k) % 4 for j in range(4)]}
    assert shown[gold] == CHOICES[2]  # the gold option text is unchanged
    several = expand_shuffled([Sample("q1", "题", CHOICES, (0, 2))], "circular", 1234, "t")[k]
    assert several.target == multi and {several.choices[i] for i in multi} == {CHOICES[0], CHOICES[2]}
    as_set = expand_shuffled([Sample("q1", "题", CHOICES, frozenset({0, 2}))], "circular", 1234, "t")[k]
    assert as_set.target == frozenset(multi)


def test_fewer_permutations_than_options_start_with_the_identity_and_are_seeded_per_item():
    a = expand_shuffled([Sample("q1", "题", CHOICES, 1), Sample("q2", "题", CHOICES, 1)], 3, 7, "t")
    assert [s.id for s in a] == ["q1#p0", "q1#p1", "q1#p2", "q2#p0", "q2#p1", "q2#p2"]
    assert a[0].choices == CHOICES and a[3].choices == CHOICES
    perms = [tuple(s.metadata["shuffle"]["permutation"]) for s in a]
    assert len(set(perms[:3])) == 3  # distinct orders per item
    assert perms == [tuple(s.metadata["shuffle"]["permutation"]) for s in expand_shuffled(
        [Sample("q1", "题", CHOICES, 1), Sample("q2", "题", CHOICES, 1)], 3, 7, "t")]  # same seed: same orders
    for s in a:
        assert s.choices[s.target] == CHOICES[1]


@pytest.mark.parametrize("sample,k,message", [
    (Sample("g1", "问题", (), "参考答案"), 2, "no options to shuffle"),
    (Sample("b1", "题", ("对", "错"), 0), 3, "at most 2 orders"),
    (Sample("q1", "题", CHOICES, 0), 1, "expected K >= 2"),
    (Sample("q1", "题", CHOICES, "A"), 2, "needs an option index"),
])
def test_shuffling_refuses_what_it_cannot_do(sample, k, message):
    with pytest.raises(ConfigError, match=message):
        expand_shuffled([sample], k, 0, "t")


def test_repeats_copy_the_item_with_its_repeat_index():
    out = expand_repeats([Sample("q1", "题", CHOICES, 1)], 3)
    assert [(s.id, s.metadata["repeat"], s.choices, s.target) for s in out] == [
        (f"q1#r{k}", {"of": "q1", "k": k}, CHOICES, 1) for k in range(3)]


@pytest.mark.parametrize("value,expected", [
    ("B", (1,)), ("ABD", (0, 1, 3)), ("A、B、D", (0, 1, 3)), (["D", "A"], (0, 3)), (None, None), ("", None),
    ("甲", None), (["AB"], None), (3, None),
])
def test_letters_of_reads_gold_and_predictions(value, expected):
    assert letters_of(value) == expected


def test_mc_decoding_presets():
    g = GenerationConfig(max_new_tokens=16, stop=("\n\n",))
    assert mc_generation_config(g, None) == g and mc_generation_config(g, "greedy") == g
    s = mc_generation_config(g, "paper-sampling")
    assert (s.temperature, s.top_p, s.max_new_tokens, s.stop) == (1.0, 0.85, 16, ("\n\n",)) and not s.greedy
    with pytest.raises(ConfigError, match="unknown decoding"):
        mc_generation_config(g, "beam")


# --- runs on the fake backend ---------------------------------------------------------------------------


@pytest.fixture()
def exam(tmp_path) -> Path:
    return write_exam_csv(tmp_path / "exam.csv", 12, EXAM_CYCLE)


SCHEMA = Path(__file__).resolve().parents[1] / "chimed_eval" / "schema" / "results.schema.json"


def run(exam: Path, out: Path, *argv: str, model: str = "oracle") -> dict:
    """Run the fake backend on the exam; the results.json, validated against its JSON Schema."""
    assert main(["run", "--no-progress", "--backend", "fake", "--model", model, "--tasks", "mcq",
                 "--task-args", f"path={exam}", "--output", str(out), *argv]) == 0
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, json.loads(SCHEMA.read_text(encoding="utf-8")))
    return doc


def metrics(doc: dict) -> dict[str, dict]:
    return {m["name"]: m for m in doc["tasks"]["mcq"]["metrics"]}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]


# (fake model, variant, --shuffle-choices, orders per item) -> acc, acc_shuffled, the share right under every
# order (circular_acc for the rotations, all_orders_acc for sampled orders), pred_share_A, position_bias, protocol
SHUFFLE_TABLE = [
    ("oracle", "paper", "circular", 4, 100.0, 100.0, ("circular_acc", 100.0), 25.0, 0.0, "paper+circular4"),
    # always A, gold A on 3 of 12 items: never right under all four rotations
    ("fixed:A", "lm-eval", "circular", 4, 25.0, 25.0, ("circular_acc", 0.0), 100.0, 75.0, "lm-eval+circular4"),
    ("oracle", "generate", "3", 3, 100.0, 100.0, ("all_orders_acc", 100.0), None, None, "generate+shuffle3"),
    # as many sampled orders as options are still sampled orders, not the rotations
    ("fixed:A", "lm-eval", "4", 4, 25.0, 25.0, ("all_orders_acc", 0.0), 100.0, 75.0, "lm-eval+shuffle4"),
]


@pytest.mark.parametrize("model,variant,flag,k,acc,acc_sh,every,share_a,bias,protocol", SHUFFLE_TABLE)
def test_shuffled_run_reports_its_figures_apart_from_acc(exam, tmp_path, model, variant, flag, k, acc, acc_sh, every,
                                                         share_a, bias, protocol):
    doc = run(exam, tmp_path / "out", "--shuffle-choices", flag, "--variant", variant, model=model)
    m = metrics(doc)
    assert doc["settings"]["shuffle_choices"] == (flag if flag == "circular" else int(flag))
    assert doc["tasks"]["mcq"]["n"] == 12 * k  # one record per (item, permutation)
    assert (m["acc"]["value"], m["acc"]["n"], m["acc"]["protocol"], m["acc"]["averaging"]) == (acc, 12, variant, "items")
    assert math.isclose(m["acc_shuffled"]["value"], acc_sh) and m["acc_shuffled"]["averaging"] == "items"
    name, value = every
    assert math.isclose(m[name]["value"], value) and m[name]["averaging"] == "items"
    assert {"circular_acc", "all_orders_acc"} - {name} & set(m) == set()  # one name, the right one
    assert {m[n]["protocol"] for n in m if n not in ("acc", "acc_macro", "ece", "brier", "extraction_failure_rate")
            and not n.startswith("extraction_rule_")} == {protocol}  # pass 0's figures keep the variant's
    shares = [m[f"pred_share_{x}"]["value"] for x in "ABCD"]
    assert math.isclose(sum(shares), 100.0)
    if share_a is not None:
        assert math.isclose(shares[0], share_a) and math.isclose(m["position_bias"]["value"], bias)
    recs = records(tmp_path / "out")
    assert [r["id"] for r in recs[:k]] == [f"exam-2#p{j}" for j in range(k)]
    assert all(r["extra"]["shuffle"]["of"] == "exam-2" for r in recs[:k])


def test_always_a_is_not_called_circular_under_sampled_orders(exam, tmp_path):
    """Issue 22 item 2: with --seed 23, the second sampled order of three of the twelve items keeps
    their gold at A, so a model that always answers A is right under both orders of those three:
    25.00, reported as all_orders_acc (protocol shuffle2), never as circular_acc; under the
    rotations (the real CircularEval) the same model scores 0."""
    sampled = metrics(run(exam, tmp_path / "k2", "--shuffle-choices", "2", "--seed", "23", model="fixed:A"))
    assert "circular_acc" not in sampled
    assert (sampled["all_orders_acc"]["value"], sampled["all_orders_acc"]["protocol"]) == (25.0, "paper+shuffle2")
    rotated = metrics(run(exam, tmp_path / "rot", "--shuffle-choices", "circular", "--seed", "23", model="fixed:A"))
    assert "all_orders_acc" not in rotated
    assert (rotated["circular_acc"]["value"], rotated["circular_acc"]["protocol"]) == (0.0, "paper+circular4")


def test_circular_uses_each_items_own_rotations(tmp_path):
    """Items with fewer options get their own n rotations (never random orders); the protocol then
    names no single n."""
    exam = tmp_path / "mixed.csv"
    exam.write_text("question,A,B,C,D,answer\n题一,甲,乙,丙,丁,B\n题二,是,否,,,A\n", encoding="utf-8")
    m = metrics(run(exam, tmp_path / "out", "--shuffle-choices", "circular", model="fixed:A"))
    perms = {r["id"]: r["extra"]["shuffle"]["permutation"] for r in records(tmp_path / "out")}
    assert perms == {"mixed-2#p0": [0, 1, 2, 3], "mixed-2#p1": [1, 2, 3, 0], "mixed-2#p2": [2, 3, 0, 1],
                     "mixed-2#p3": [3, 0, 1, 2], "mixed-3#p0": [0, 1], "mixed-3#p1": [1, 0]}
    assert (m["circular_acc"]["value"], m["circular_acc"]["protocol"]) == (0.0, "paper+circular")


@pytest.mark.parametrize("flag", ["1", "circ", "0", "-3", "two"])
def test_bad_shuffle_choices_is_one_line_exit_2(exam, tmp_path, capsys, flag):
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "oracle", "--tasks", "mcq", "--task-args",
                 f"path={exam}", "--output", str(tmp_path / "o"), "--shuffle-choices", flag]) == 2
    err = capsys.readouterr().err
    assert f"--shuffle-choices {flag}: expected an integer K >= 2" in err and "circular" in err
    assert "Traceback" not in err


def test_pass_zero_is_the_unshuffled_run_and_score_and_resume_reproduce_it(exam, tmp_path, capsys):
    plain = run(exam, tmp_path / "plain", model="fixed:B")
    out = tmp_path / "shuffled"
    shuffled = run(exam, out, "--shuffle-choices", "4", model="fixed:B")
    # pass 0 renders exactly the unshuffled prompts, so acc and acc_macro are the unshuffled run's
    plain_hashes = [r["prompt_hash"] for r in records(tmp_path / "plain")]
    assert [r["prompt_hash"] for r in records(out) if r["id"].endswith("#p0")] == plain_hashes
    for name in ("acc", "ece", "brier"):  # one subject: no acc_macro
        assert metrics(shuffled)[name] == metrics(plain)[name], name
    assert "acc_macro" not in metrics(plain)
    assert "circular_acc" not in metrics(plain) and "shuffle_choices" not in plain["settings"]
    before = (out / "samples" / "mcq.jsonl").read_bytes()
    # score recomputes every figure from the records alone; a rerun adds nothing
    assert main(["score", str(out)]) == 0
    assert metrics(json.loads((out / "results.json").read_text()))  == metrics(shuffled)
    again = run(exam, out, "--shuffle-choices", "4", model="fixed:B")
    assert metrics(again) == metrics(shuffled) and (out / "samples" / "mcq.jsonl").read_bytes() == before
    # another K is another run
    capsys.readouterr()
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "fixed:B", "--tasks", "mcq", "--task-args",
                 f"path={exam}", "--output", str(out), "--shuffle-choices", "3"]) == 2
    assert "shuffle_choices: 4 -> 3" in capsys.readouterr().err


def test_shuffling_a_task_without_options_is_refused(tmp_path):
    from chimed_eval.tasks.generation import GenerationTask

    task = GenerationTask("qa", lambda _d: TaskData([Sample("g1", "头痛怎么办", target="多休息")]))
    with pytest.raises(ConfigError, match="no options to shuffle"):
        prepare(task, tmp_path, RunSettings(model="oracle", backend="fake", shuffle_choices=2))


def test_calibration_figures_by_hand(exam, tmp_path):
    """The fake model answers A with log-probabilities (0, -6, -7, -8): the same probabilities on
    every item, gold A on 3 of 12 items."""
    m = metrics(run(exam, tmp_path / "out", model="fixed:A"))
    z = sum(math.exp(x) for x in (0, -6, -7, -8))
    p = [math.exp(x) / z for x in (0, -6, -7, -8)]
    golds = [EXAM_CYCLE[i % 8] for i in range(12)]
    # sum_i (p_i - y_i)^2 with gold g: sum p_i^2 - 2 p_g + 1
    want = sum(sum(x * x for x in p) - 2 * p["ABCD".index(g)] + 1 for g in golds) / 12
    assert math.isclose(m["brier"]["value"], want, rel_tol=1e-12)
    assert math.isclose(m["ece"]["value"], 100 * abs(golds.count("A") / 12 - p[0]), rel_tol=1e-12)  # one bin
    assert (m["ece"]["protocol"], m["ece"]["ci_low"], m["brier"]["averaging"]) == ("paper", None, "items")
    gen = metrics(run(exam, tmp_path / "gen", "--variant", "generate", model="fixed:A"))
    assert "ece" not in gen and "brier" not in gen  # a generation has no option probabilities


def test_repeats_need_sampling(exam, tmp_path, capsys):
    for argv in (("--variant", "generate"), ("--variant", "paper", "--decoding", "paper-sampling")):
        capsys.readouterr()
        assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args",
                     f"path={exam}", "--output", str(tmp_path / "o"), "--repeats", "3", *argv]) == 2
        assert "--repeats 3 needs sampled decoding" in capsys.readouterr().err
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args",
                 f"path={exam}", "--output", str(tmp_path / "o"), "--repeats", "2", "--shuffle-choices", "2"]) == 2
    assert main(["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args",
                 f"path={exam}", "--output", str(tmp_path / "o"), "--repeats", "0"]) == 2


def test_each_repeat_is_seeded_per_seed_item_and_k(exam, tmp_path):
    from chimed_eval.tasks.factory import build_tasks

    task = build_tasks(["mcq"], {"path": str(exam)}, None)[0].task
    p = prepare(task, tmp_path, RunSettings(model="random", backend="fake", variant="generate", seed=5, repeats=3,
                                            decoding="paper-sampling", data_dir=str(tmp_path)))
    assert [r.key for r in p.requests[:3]] == ["exam-2#r0", "exam-2#r1", "exam-2#r2"]
    seeds = [r.generation.seed for r in p.requests]
    assert seeds[:3] == [item_seed(5, f"exam-2#r{k}") for k in range(3)] and len(set(seeds)) == len(seeds)
    assert {(r.generation.temperature, r.generation.top_p) for r in p.requests} == {(1.0, 0.85)}
    assert len({r.context for r in p.requests[:3]}) == 1  # the same prompt K times


def test_unshuffled_pass_is_the_plain_runs_request_under_sampling(exam, tmp_path):
    """Issue 22 item 10: on sampled decoding, pass 0 of --shuffle-choices sends exactly the request
    of a run without the flag (same prompt, same generation settings and seed); the other orders
    draw their own seeds."""
    from chimed_eval.tasks.factory import build_tasks

    task = build_tasks(["mcq"], {"path": str(exam)}, None)[0].task
    common = dict(model="random", backend="fake", variant="generate", seed=5, decoding="paper-sampling",
                  data_dir=str(tmp_path))
    plain = prepare(task, tmp_path, RunSettings(**common)).requests
    shuffled = prepare(task, tmp_path, RunSettings(**common, shuffle_choices=3)).requests
    first = [r for r in shuffled if r.key.endswith("#p0")]
    assert [(r.context, r.generation) for r in first] == [(r.context, r.generation) for r in plain]
    assert first[0].generation.seed == item_seed(5, "exam-2") and not first[0].generation.greedy
    assert len({r.generation.seed for r in shuffled}) == len(shuffled)  # every other order its own seed


def test_repeat_figures_from_the_records(exam, tmp_path):
    out = tmp_path / "out"
    doc = run(exam, out, "--variant", "generate", "--decoding", "paper-sampling", "--repeats", "5", model="random")
    m = metrics(doc)
    recs = records(out)
    by_item: dict[str, list[dict]] = {}
    for r in recs:
        by_item.setdefault(r["extra"]["repeat"]["of"], []).append(r)
    assert len(by_item) == 12 and {len(v) for v in by_item.values()} == {5}
    avg = 100 * sum(r["score"] for r in recs) / len(recs)
    maj = 100 * sum(next(r["score"] for r in rs if r["prediction"] == majority_answer([x["prediction"] for x in rs]))
                    for rs in by_item.values()) / 12
    any_right = 100 * sum(any(r["score"] == 1.0 for r in rs) for rs in by_item.values()) / 12
    assert math.isclose(m["avg@5"]["value"], avg) and math.isclose(m["pass@1"]["value"], avg)
    assert math.isclose(m["maj@5"]["value"], maj) and math.isclose(m["pass@5"]["value"], any_right)
    assert m["avg@5"]["protocol"] == "generate+repeats5" and m["acc"]["n"] == 12
    assert 0 < avg < 100  # the sampled repeats really differ
    assert metrics(run(exam, out, "--variant", "generate", "--decoding", "paper-sampling", "--repeats", "5",
                       model="random")) == m  # resumed: the same samples


# --- check ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,direction", [
    ("ece", "lower"), ("brier", "lower"), ("position_bias", "lower"), ("extraction_failure_rate", "lower"),
    ("acc", "higher"), ("circular_acc", "higher"), ("acc_shuffled", "higher"), ("maj@5", "higher"),
    ("pass@1", "higher"), ("pred_share_A", None), ("f1_count", None),
])
def test_metric_direction(name, direction):
    assert metric_direction(name) == direction


def test_check_compares_the_new_metrics_as_their_own(exam, tmp_path, capsys):
    out = tmp_path / "out"
    run(exam, out, "--shuffle-choices", "circular", model="fixed:A")
    baseline = tmp_path / "b.json"
    assert main(["check", str(out), "--save-baseline", str(baseline)]) == 0

    def check(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = main(["check", str(out), "--baseline", str(baseline), *argv])
        return rc, capsys.readouterr().out

    assert check()[0] == 0

    def edit(fn) -> None:
        doc = json.loads((out / "results.json").read_text())
        doc.pop("integrity", None)  # a hand-made results file (no digest): compared as it is, flagged unverified
        for m in doc["tasks"]["mcq"]["metrics"]:
            fn(m)
        (out / "results.json").write_text(json.dumps(doc))

    edit(lambda m: m.update(value=m["value"] + 1.0) if m["name"] == "ece" else None)
    rc, text = check()
    row = next(line for line in text.splitlines() if line.startswith("mcq") and "ece (paper)" in line)
    assert rc == 1 and "+1.0000 (worse)" in row and "REGRESSION" in row
    edit(lambda m: m.update(value=m["value"] - 1.0) if m["name"] == "ece" else None)
    # circular accuracy moved into acc's place is caught: acc is compared with acc only
    edit(lambda m: m.update(name="acc_tmp") if m["name"] == "acc" else None)
    edit(lambda m: m.update(name="acc") if m["name"] == "circular_acc" else None)
    rc, text = check()
    assert rc == 1 and "circular_acc" in text and "missing" in text
    edit(lambda m: m.update(name="circular_acc") if m["name"] == "acc" else None)
    edit(lambda m: m.update(name="acc") if m["name"] == "acc_tmp" else None)
    assert check()[0] == 0
    edit(lambda m: m.update(averaging="records") if m["name"] == "acc_shuffled" else None)
    rc, text = check()
    assert rc == 1 and "averaging items->records" in text
    edit(lambda m: m.update(averaging="items", protocol="paper+shuffle4")
         if m["name"] == "acc_shuffled" else None)
    rc, text = check()
    assert rc == 1 and "protocol paper+circular4->paper+shuffle4" in text


def test_check_lists_metrics_the_baseline_lacks_without_failing(exam, tmp_path, capsys):
    out = tmp_path / "out"
    run(exam, out, model="fixed:A")
    baseline = tmp_path / "b.json"
    main(["check", str(out), "--save-baseline", str(baseline)])
    doc = json.loads(baseline.read_text())
    doc["tasks"]["mcq"]["metrics"] = [m for m in doc["tasks"]["mcq"]["metrics"] if m["name"] not in ("ece", "brier")]
    baseline.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["check", str(out), "--baseline", str(baseline)]) == 0
    assert "ece" not in capsys.readouterr().out
    assert main(["check", str(out), "--baseline", str(baseline), "--all"]) == 0
    text = capsys.readouterr().out
    assert any(line.startswith("mcq") and "ece (paper)" in line and "absent" in line for line in text.splitlines())


@pytest.mark.parametrize("argv", [("--shuffle-choices", "4"),
                                  ("--variant", "generate", "--decoding", "paper-sampling", "--repeats", "3")])
def test_shards_merge_to_the_unsharded_figures(exam, tmp_path, argv):
    whole = metrics(run(exam, tmp_path / "whole", *argv, model="random"))
    for i in (0, 1):
        run(exam, tmp_path / f"s{i}", *argv, "--shard", f"{i}/2", model="random")
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "-o", str(tmp_path / "m")]) == 0
    assert metrics(json.loads((tmp_path / "m" / "results.json").read_text())) == whole


def test_multi_answer_items_are_shuffled_with_every_gold_letter(tmp_path):
    exam = tmp_path / "multi.csv"
    exam.write_text("question,A,B,C,D,answer\n题一,甲,乙,丙,丁,ABD\n题二,甲,乙,丙,丁,C\n", encoding="utf-8")
    m = metrics(run(exam, tmp_path / "out", "--variant", "generate", "--shuffle-choices", "circular"))
    assert (m["circular_acc"]["value"], m["acc_shuffled"]["value"]) == (100.0, 100.0)
    golds = [r["gold"] for r in records(tmp_path / "out") if r["extra"]["shuffle"]["of"] == "multi-2"]
    assert golds == ["ABD", "ACD", "BCD", "ABC"]  # original {A, B, D} under the four rotations
