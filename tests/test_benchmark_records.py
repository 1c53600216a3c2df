"""The benchmark evidence: every record in benchmarks/results/ follows the schema, the folder stays small and holds
only records, BENCHMARKS.md stays short and each headline number is its record's (checked here against numbers
read straight from the JSON, not through benchmarks/records.py), and the checker catches a changed number."""
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "BENCHMARKS.md"

_spec = importlib.util.spec_from_file_location("bench_records", ROOT / "benchmarks" / "records.py")
records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(records)


def _record(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


def _headline():
    """The headline table's rows as dicts, parsed from the markdown (independently of records.py)."""
    text = REPORT.read_text()
    block = text.split("<!-- headline -->")[1].split("<!-- /headline -->")[0]
    lines = [ln for ln in block.strip().split("\n") if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def test_every_record_follows_the_schema():
    assert records.check_records() == []


def test_results_folder_holds_only_small_json_records():
    files = [p for p in RESULTS.iterdir()]
    assert all(p.is_file() for p in files)
    assert {p.suffix for p in files if p.name != "README.md"} == {".json"}
    assert sum(p.stat().st_size for p in files) <= 1_500_000
    for p in files:
        if p.suffix == ".json":
            assert json.loads(p.read_text())["id"] == p.stem


def test_report_is_short_and_its_generated_blocks_match_the_records():
    assert len(REPORT.read_text().rstrip("\n").split("\n")) <= 350
    assert records.check_report() == []


def test_each_headline_row_names_a_record_with_that_device_and_date():
    rows = _headline()
    assert len(rows) >= 20
    for row in rows:
        name = row["record"].strip("`")
        rec = _record(name)
        device = rec["device"] + (f" x {rec['gpus']}" if rec["gpus"] > 1 else "")
        assert (row["device"], row["date"]) == (device, rec["date"]), name
        assert row["status"] in ("met", "not met")


def _headline_rows_for(name):
    return [r for r in _headline() if r["record"] == f"`{name}`"]


def test_headline_numbers_equal_the_records_read_directly():
    # the LIF kernel: SpikingJelly's time over ours at fp32, 38.5 M elements, T = 4, and our share of the copy bandwidth
    rec = _record("neuron_lif_h100")
    cell = {r["contender"]: r for r in rec["results"]["rows"]
            if (r["dtype"], r["numel"], r["T"]) == ("fp32", 38500000, 4)}
    ratio, frac = cell["sj:auto"]["ms"] / cell["ours"]["ms"], cell["ours"]["frac_copy_bw"]
    neuron = _headline_rows_for("neuron_lif_h100")
    assert neuron[0]["measured"].startswith(f"{ratio:.2f}x") and f"{ratio:.2f}" == "3.27"
    assert neuron[1]["measured"].startswith(f"{frac * 100:.1f} %")
    # ImageNet scale on the H100: the default graphed step against SpikingJelly's fastest setting, and eager fp32
    # against SpikingJelly fp32 with TF32 off, then on, for both
    rec = _record("model_spikformer_8_512_224_h100")
    ips = {(r["setting"], r["tf32"]): r["images_per_s"] for r in rec["results"]["rows"]}
    sj_fastest = max(v for (name, _), v in ips.items() if name.startswith("sj-"))
    expected = [ips["ours-bf16-graph", False] / sj_fastest, ips["ours-fp32", False] / ips["sj-fp32", False],
                ips["ours-fp32", True] / ips["sj-fp32", True]]
    got = [float(re.search(r": ([\d.]+)x", r["measured"]).group(1)) for r in _headline_rows_for(rec["id"])]
    assert got == [round(x, 2) for x in expected] == [3.17, 1.35, 1.83]
    # data-parallel speedups
    for name, want in (("ddp_spikformer_4_384_b128_h200x2", 1.61), ("ddp_spikformer_4_384_b512_h200x2", 1.87),
                       ("ddp_spikformer_4_384_b512_h200x4", 3.35)):
        r = _record(name)["results"]["rows"]
        speedup = r[1]["images_per_s"] / r[0]["images_per_s"]
        assert round(speedup, 2) == want
        assert _headline_rows_for(name)[0]["measured"].endswith(f"{speedup:.2f}x")
    # the spiking LM's test bits per byte, and the dense recipes' test metrics
    lm = _record("lm_gcide_h200")["results"]["rows"][1]
    assert _headline_rows_for("lm_gcide_h200")[0]["measured"].startswith(f"{lm['test_bpc']:.3f}")
    seg = _record("segment_fashion_mnist_scenes_h200")["results"]["rows"][0]["test_miou"]
    assert _headline_rows_for("segment_fashion_mnist_scenes_h200")[0]["measured"].startswith(f"{seg:.3f}")
    det = _record("detect_fashion_mnist_scenes_h200")["results"]["rows"][0]["test_map50"]
    assert _headline_rows_for("detect_fashion_mnist_scenes_h200")[0]["measured"].startswith(f"{det:.3f}")


def test_speed_records_state_tf32_and_cudnn_benchmark_per_contender():
    for path in RESULTS.glob("*.json"):
        rec = json.loads(path.read_text())
        if rec["benchmark"] in records.SPEED:
            for who, s in rec["settings"]["contenders"].items():
                assert s["tf32"] in (True, False, None), (path.name, who)
                assert s["cudnn_benchmark"] in (True, False, None), (path.name, who)
    # the model benchmark states both per row; the record's contenders say the same, the fp32 ones once per TF32 value
    rec = _record("model_spikformer_8_512_224_h100")
    contenders = rec["settings"]["contenders"]
    assert contenders["sj-fp32 (TF32 off)"]["tf32"] is False and contenders["sj-fp32 (TF32 on)"]["tf32"] is True
    assert all(s["cudnn_benchmark"] is False for s in contenders.values())


def test_no_record_names_a_path_outside_the_repository():
    for path in RESULTS.glob("*.json"):
        assert not re.search(r"(/work/|/root/|/home/|/tmp/)", path.read_text()), path.name


@pytest.fixture
def copies(tmp_path):
    """A copy of the records and the report, to break on purpose."""
    folder = tmp_path / "results"
    shutil.copytree(RESULTS, folder)
    report = tmp_path / "BENCHMARKS.md"
    shutil.copy(REPORT, report)
    return folder, report


def test_a_changed_headline_number_fails_the_check(copies):
    folder, report = copies
    assert records.check_report(report, folder) == []
    text = report.read_text()
    assert "3.27x (0.274 vs 0.895 ms)" in text
    report.write_text(text.replace("3.27x (0.274 vs 0.895 ms)", "3.28x (0.274 vs 0.895 ms)"))
    errs = records.check_report(report, folder)
    assert len(errs) == 1 and "3.28x" in errs[0] and "3.27x" in errs[0]


def test_a_changed_record_number_fails_the_check(copies):
    folder, report = copies
    path = folder / "model_spikformer_8_512_224_h100.json"
    rec = json.loads(path.read_text())
    rec["results"]["rows"][1]["images_per_s"] = 300.0  # ours-fp32, TF32 off: 300 / 137 = 2.19x instead of 1.35x
    path.write_text(json.dumps(rec))
    errs = records.check_report(report, folder)
    assert any("1.35x" in e and "2.19x" in e for e in errs)


def test_the_schema_check_catches_missing_and_wrong_keys(copies):
    folder, _ = copies
    path = folder / "ddp_spikformer_4_384_b128_h200x2.json"
    rec = json.loads(path.read_text())
    del rec["settings"]["contenders"]["2 GPUs"]["tf32"]
    rec["date"] = "28 Nov 2026"
    path.write_text(json.dumps(rec))
    (folder / "run.log").write_text("a log")
    errs = records.check_records(folder)
    assert any("'2 GPUs' lacks 'tf32'" in e for e in errs)
    assert any("not YYYY-MM-DD" in e for e in errs)
    assert any("not records: run.log" in e for e in errs)


def test_a_record_left_out_of_the_report_is_named(copies):
    folder, report = copies
    shutil.copy(folder / "kernel_bn_fire_h200.json", folder / "kernel_bn_fire_h100.json")
    rec = json.loads((folder / "kernel_bn_fire_h100.json").read_text())
    rec["id"] = "kernel_bn_fire_h100"
    (folder / "kernel_bn_fire_h100.json").write_text(json.dumps(rec))
    assert records.check_report(report, folder) == ["BENCHMARKS.md: record kernel_bn_fire_h100 is in no block"]


def test_expressions_cannot_run_code():
    assert records.evaluate("rows[0]['a'] / 2 + max(1, 3)", {"rows": [{"a": 4}]}) == 5
    for bad in ("__import__('os')", "rows.__class__", "(lambda: 1)()", "open('x')"):
        with pytest.raises(records.RecordError):
            records.evaluate(bad, {"rows": []})


def test_and_or_give_python_values_not_booleans():
    # a table column like `rate and rate * 100` must give the number, and "-" (None) where rate is missing
    assert records.evaluate("a or b", {"a": 0, "b": 5}) == 5
    assert records.evaluate("a and a * 100", {"a": 0.25}) == 25
    assert records.evaluate("a and a * 100", {"a": None}) is None
    assert records.evaluate("a > 1 and b", {"a": 2, "b": 0}) == 0


def test_the_figures_are_drawn_from_the_records(tmp_path):
    pytest.importorskip("matplotlib")
    paths = records.plot(tmp_path)
    names = {p.name for p in paths}
    assert {"lm_gcide_h200.png", "segment_fashion_mnist_scenes_h200.png",
            "suite_attention_digits_cpu_pareto.png"} <= names
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_a_benchmark_output_imports_as_a_record():
    out = {"suite": "model", "complete": True, "model": "spikformer_4_384", "T": 4,
           "provenance": {"date": "2026-12-01T10:00:00+00:00", "torch": "2.11.0+cu130", "cuda": "13.0",
                          "device": "NVIDIA H100 80GB HBM3", "device_count": 1, "commit": "abc1234",
                          "commit_dirty": False},
           "args": {"model": "spikformer_4_384", "T": 4, "batches": [64], "settings": ["ours-bf16-graph", "sj-fp32"],
                    "check_steps": 0, "out": "/somewhere/model.json", "dry_run": False},
           "settings": {"contenders": {"ours-bf16-graph": {"precision": "bf16 autocast", "tf32": True,
                                                           "cudnn_benchmark": True},
                                       "sj-fp32": {"precision": "fp32", "tf32": True, "cudnn_benchmark": True}},
                        "source": "read from torch.backends when each contender ran"},
           "rows": [{"setting": "ours-bf16-graph", "batch": 64, "images_per_s": 8000.0, "step_ms": 8.0, "peak_gb": 2.5},
                    {"setting": "sj-fp32", "batch": 64, "images_per_s": 2500.0, "step_ms": 25.6, "peak_gb": 6.8}]}
    rec = records.from_bench(out, "model_spikformer_4_384_32_h100_new")
    assert records.check_record(rec["id"], rec) == []
    assert rec["command"].startswith("spikeformers bench model --model spikformer_4_384 --T 4 --batches 64")
    assert "/somewhere" not in json.dumps(rec) and rec["commit"] == "abc1234"
    block = records.render_block({rec["id"]: rec}, [rec["id"]])
    assert "| ours-bf16-graph | 64 | 8,000 | 8 | 2.5 | 3.2 |" in block  # 8000 / 2500, SpikingJelly's fastest
    assert any("TF32 on for every contender; cudnn.benchmark on for every contender" in ln for ln in block)
    with pytest.raises(records.RecordError, match="did not finish"):
        records.from_bench(dict(out, complete=False), "x")
