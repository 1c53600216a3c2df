"""The language-model task through the one engine: bits per byte from the summed log-likelihood,
validation and test splits, eval and generate on a run directory, and their input errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from spikeformers.cli import main
from spikeformers.tasks import create_task
from spikeformers.train import evaluate_run, load_config, load_trained_model, train
from spikeformers.train.generate import generate_from_run

TEXT = "a cat sat on a mat. the dog ate the log. " * 60


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    corpus = tmp / "corpus.txt"
    corpus.write_text(TEXT)
    cfg = load_config(None, ["model=spiking_lm_tiny", "data=text", f"data.root={corpus}", "data.options.seq_len=16",
                             "model.block_size=16", "batch_size=8", "data.eval_batch_size=16", "epochs=2",
                             "optim.label_smoothing=0", f"run.out_dir={tmp}", "run.device=cpu", "name=lm"])
    return train(cfg, progress=False)


def test_lm_run_reports_bits_per_byte_on_validation_and_test(lm_run):
    s = lm_run
    assert s["task"] == "lm" and s["metric"] == "test_bpc" and s["dataset"] == "text"
    for split in ("val", "test"):
        assert math.isclose(s[f"{split}_bpc"], s[f"{split}_loss"] / math.log(2), rel_tol=1e-9)  # byte tokens
        assert math.isclose(s[f"{split}_ppl"], math.exp(s[f"{split}_loss"]), rel_tol=1e-9)
    n = len(TEXT.encode())
    assert s["test_tokens"] == (round(0.01 * n) - 1) // 16 * 16  # every full window of the split, scored once
    assert s["test_bpc"] < 8.0 and "snn_nJ_per_token" in s["energy"] and "Per token" in s["energy"]["text"]


def test_the_metric_is_the_summed_log_likelihood_per_byte():
    task = create_task("lm", None)
    task.token_bytes = torch.tensor([1.0, 1.0, 2.0])  # token 2 stands for a two-byte character
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]]])
    y = torch.tensor([[0, 2]])
    s = {k: float(v) for k, v in task.eval_sums(logits, y).items()}
    nll = -(F.log_softmax(logits[0, 0], -1)[0] + F.log_softmax(logits[0, 1], -1)[2])
    m = task.eval_metrics(s)
    assert math.isclose(m["bpc"], float(nll) / math.log(2) / 3, rel_tol=1e-12) and m["n"] == 2


def test_eval_reproduces_the_summary(lm_run):
    r = evaluate_run(lm_run["run_dir"], device="cpu")
    for k in ("val_bpc", "test_bpc", "test_tokens", "mean_firing_rate"):
        assert r[k] == pytest.approx(lm_run[k], rel=1e-9)


def test_generate_streams_the_models_own_samples(lm_run, capsys):
    r = generate_from_run(lm_run["run_dir"], "the ", 12, temperature=0.7, top_k=5, seed=3, device="cpu")
    model, _, _ = load_trained_model(lm_run["run_dir"], device="cpu")
    ref = model.generate(torch.tensor([list(b"the ")]), 12, temperature=0.7, top_k=5,
                         generator=torch.Generator().manual_seed(3))
    assert r["ids"] == ref[0, 4:].tolist() and r["tokens"] == 12 and r["tokens_per_s"] > 0
    assert capsys.readouterr().out == "the " + r["text"] + "\n"
    assert main(["generate", lm_run["run_dir"], "--prompt", "a ", "--max-new-tokens", "5", "--device", "cpu"]) == 0
    assert "tokens/s" in capsys.readouterr().err


@pytest.mark.parametrize("args, match", [
    (["--prompt", ""], "encodes to no tokens"),
    (["--prompt", "a", "--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
    (["--prompt", "a", "--top-k", "0"], "--top-k must be >= 1"),
])
def test_generate_input_errors_are_one_line(lm_run, capsys, args, match):
    assert main(["generate", lm_run["run_dir"], *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_generate_refuses_a_run_of_a_classifier(tmp_path, capsys):
    cfg = load_config(None, ["run.max_steps=1", "epochs=1", f"run.out_dir={tmp_path}", "run.device=cpu", "name=cls"])
    s = train(cfg, progress=False)
    assert main(["generate", s["run_dir"], "--prompt", "a"]) == 2
    assert "is not a language-model run" in capsys.readouterr().err


def test_lm_task_refuses_image_data_and_classify_refuses_text(tmp_path):
    from spikeformers.errors import ConfigError

    with pytest.raises(ConfigError, match="task 'lm' cannot train on dataset 'digits'"):
        train(load_config(None, ["task=lm", "run.max_steps=1", f"run.out_dir={tmp_path}"]), progress=False)
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    with pytest.raises(ConfigError, match="task 'classify' cannot train on dataset 'text'"):
        train(load_config(None, ["task=classify", "data=text", f"data.root={corpus}", "data.options.seq_len=8",
                              f"run.out_dir={tmp_path}"]),
              progress=False)
    with pytest.raises(ConfigError, match="unknown task 'segmentation'"):
        train(load_config(None, ["task=segmentation", f"run.out_dir={tmp_path}"]), progress=False)


def test_predict_gives_the_next_bytes_distribution_of_the_text(lm_run, tmp_path, capsys):
    from spikeformers.train import predict_files

    text = "the dog ate the lo"
    res = predict_files(lm_run["run_dir"], text=text, top_k=3, device="cpu", out=str(tmp_path / "p.json"))
    model, _, _ = load_trained_model(lm_run["run_dir"], "cpu")
    ids = torch.tensor([list(text.encode())[-16:]])  # bytes, the last block_size of them
    want = model(ids)[0, -1].softmax(-1).topk(3)
    top = res["predictions"][0]["top"]
    assert [t["class"] for t in top] == want.indices.tolist()
    assert [t["prob"] for t in top] == pytest.approx(want.values.tolist(), abs=1e-6)
    assert [t["token"] for t in top] == [bytes([i]).decode("utf-8", "replace") for i in want.indices.tolist()]
    assert main(["predict", lm_run["run_dir"], "--text", text, "--out", str(tmp_path / "q.json")]) == 0
    assert capsys.readouterr().out.startswith(f"--text: {top[0]['token']!r} {top[0]['prob']:.3f}")
    assert main(["predict", lm_run["run_dir"], "--text", ""]) == 2
