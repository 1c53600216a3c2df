"""Typed config: YAML recipes, overrides, aliases, strict errors, exact round trips."""
import dataclasses

import pytest
import yaml

from spikeformers.errors import ConfigError
from spikeformers.train import (
    ALIASES,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


def test_defaults():
    cfg = load_config(None, [])
    assert cfg == TrainConfig()
    assert (cfg.model.name, cfg.data.name) == ("spikformer_tiny", "digits")
    assert cfg.optim.lr == 2e-3 and cfg.optim.betas == (0.9, 0.999)
    assert cfg.run.amp == "auto" and cfg.model.options == {}


def test_aliases_map_to_fields():
    cfg = load_config(None, [
        "model=spikformer_4_384", "data=fashion_mnist", "attention=a2os2a", "neuron=plif", "T=4",
        "encoder=rate", "twin=ann", "epochs=3", "lr=0.01", "seed=7", "batch_size=32", "name=exp1",
        "device=cpu",
    ])
    assert cfg.model == dataclasses.replace(
        cfg.model, name="spikformer_4_384", attention="a2os2a", neuron="plif", T=4, encoder="rate", twin="ann"
    )
    assert (cfg.data.name, cfg.data.batch_size, cfg.schedule.epochs) == ("fashion_mnist", 32, 3)
    assert (cfg.optim.lr, cfg.run.seed, cfg.run.name, cfg.run.device) == (0.01, 7, "exp1", "cpu")
    assert set(ALIASES) == {"task", "model", "data", "attention", "neuron", "T", "encoder", "twin", "epochs", "lr",
                            "seed", "batch_size", "name", "device"}


def test_dotted_overrides_and_coercion():
    cfg = load_config(None, [
        "optim.lr=1e-3",  # YAML 1.1 reads this as a string: coerced to float
        "schedule.warmup_epochs=1",  # int accepted for a float field
        "optim.betas=[0.9, 0.95]",  # YAML list -> tuple
        "optim.grad_clip=null",
        "data.flip=true",
        "data.crop_padding=4",
        "run.ema=0.999",
        "run.amp=off",  # stays the string "off", not YAML's false
        "run.name=2024",  # string field: taken verbatim
        "data.root=~/data",
        "run.max_steps=5",
        "run.out_dir='my runs'",  # YAML quoting is honoured
    ])
    assert cfg.run.out_dir == "my runs"
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.lr, float)
    assert cfg.schedule.warmup_epochs == 1.0 and isinstance(cfg.schedule.warmup_epochs, float)
    assert cfg.optim.betas == (0.9, 0.95) and cfg.optim.grad_clip is None
    assert cfg.data.flip is True and cfg.data.crop_padding == 4 and cfg.run.ema == 0.999
    assert (cfg.run.amp, cfg.run.name, cfg.data.root, cfg.run.max_steps) == ("off", "2024", "~/data", 5)
    assert load_config(None, ["name="]).run.name is None  # empty: null for an Optional field


def test_model_extra_keys_go_to_options():
    # command-line text is kept as text: create_model reads it by the model's field types
    cfg = load_config(None, ["model.depth=2", "model.pooling=0011", "model.options.qkv_bias=true",
                             "model.neuron_opts={tau: 3.0}"])
    assert cfg.model.options == {"depth": "2", "pooling": "0011", "qkv_bias": "true", "neuron_opts": {"tau": 3.0}}
    with pytest.raises(ConfigError, match="duplicates model.T"):
        load_config(None, ["model.options.T=4"])


@pytest.mark.parametrize("override,pattern", [
    ("optim.lrr=1", r"unknown config key 'optim.lrr'; valid keys of optim: lr, weight_decay, betas, grad_clip"),
    ("data.size=3", r"valid keys of data: name, root, batch_size"),
    ("foo.bar=1", r"unknown config section 'foo'.*valid sections: model, data, task, optim, schedule, run"),
    ("bogus=1", r"unknown override key 'bogus'.*sections: model, data.*alias: model, data"),
    ("optim.lr", r"malformed override 'optim.lr': expected key=value"),
    ("=3", r"malformed override"),
    ("optim=3", r"unknown override key 'optim'"),
    ("run.seed.x=1", r"unknown config key 'run.seed.x'"),
    ("epochs=2.5", r"schedule.epochs must be an integer, got float 2.5"),
    ("epochs=true", r"schedule.epochs must be an integer, got bool"),
    ("lr=fast", r"optim.lr must be a number, got str 'fast'"),
    ("lr=.inf", r"optim.lr must be a number"),
    ("data.flip=1", r"data.flip must be true or false or null, got int 1"),
    ("optim.betas=[0.9]", r"optim.betas must be a list of 2 numbers"),
    ("model.options=[1]", r"model.options must be a mapping"),
    ("run.amp=fp16", r"run.amp must be one of 'auto', 'bf16', 'off'"),
    ("twin=snn", r"model.twin must be 'ann', 'qann', 'qann_sa' or null"),
    ("batch_size=0", r"data.batch_size must be >= 1"),
    ("data.erasing=2", r"data.erasing must be in \[0, 1\]"),
    ("optim.lr=[1", r"optim.lr: cannot parse value"),
    ("model=[a, b]", r"model.name must be a string, got list"),
    ("model=", r"model.name must be a string, got NoneType None"),
])
def test_override_errors_are_one_line(override, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        load_config(None, [override])
    assert "\n" not in str(e.value)


def test_yaml_then_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {name: spikformer_4_384, T: 4, depth: 2}\n"
        "optim:\n  lr: 1e-3\n  betas: [0.8, 0.9]\n"
        "run:\n  amp: off\n"  # YAML's false, read as "off"
        "schedule:\n"  # an empty section is allowed
    )
    cfg = load_config(str(recipe), ["lr=5e-4", "T=8", "optim.lr=4e-4"])
    assert cfg.model.name == "spikformer_4_384" and cfg.model.T == 8 and cfg.model.options == {"depth": 2}
    assert cfg.optim.lr == 4e-4 and cfg.optim.betas == (0.8, 0.9)  # the last override wins
    assert cfg.run.amp == "off" and cfg.schedule == TrainConfig().schedule
    assert cfg.data == TrainConfig().data  # a recipe lists only what it changes


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file .*missing.yaml does not exist"):
        load_config(str(tmp_path / "missing.yaml"), [])
    cases = {
        "optimizer: {lr: 1}\n": r"unknown config section 'optimizer'; valid sections",
        "optim: {learning_rate: 1}\n": r"unknown config key 'optim.learning_rate'; valid keys of optim: lr",
        "data: {batch_size: '64'}\n": r"data.batch_size must be an integer, got str",
        "run: {name: 5}\n": r"run.name must be a string or null, got int 5",
        "optim: 3\n": r"section 'optim' must be a mapping",
        "[1, 2]\n": r"expected a mapping of sections",
        "optim: {lr: [\n": r"not valid YAML",
    }
    for i, (text, pattern) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=pattern) as e:
            load_config(str(path), [])
        assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_round_trip(tmp_path):
    cfg = load_config(None, [
        "model=spikformer_4_384", "T=4", "model.depth=2", "model.extra={a: [1, 2], b: null}", "lr=3e-4",
        "optim.betas=[0.85, 0.99]", "run.amp=off", "run.name=123", "data.flip=false", "run.ema=0.9999",
        "schedule.min_lr=1e-7", "optim.grad_clip=null",
    ])
    d = config_to_dict(cfg)
    assert d["optim"]["betas"] == [0.85, 0.99] and set(d) == {"model", "data", "task", "optim", "schedule", "run", "distill"}
    assert config_from_dict(d) == cfg
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(d))) == cfg
    path = tmp_path / "sub" / "config.yaml"
    save_config(cfg, path)
    assert load_config(str(path), []) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp files left
    assert config_from_dict({}) == TrainConfig()
    with pytest.raises(ConfigError, match="unknown config key 'run.nme'"):
        config_from_dict({"run": {"nme": "x"}})


def test_mixing_tet_and_dataset_options():
    cfg = load_config(None, [
        "optim.mixup=0.8", "optim.cutmix=1", "optim.mix_prob=0.5", "optim.mix_off_epoch=200", "optim.tet=true",
        "optim.tet_lambda=0.001", "data.options.mode=row", "data.options.frames=16", "data.options.perm_seed=03",
        "model.strides=0011", "model.pooling=0001",
    ])
    o = cfg.task.options  # the loss options moved from optim to the task; defaults are not copied
    assert (o["mixup"], o["cutmix"], o["mix_prob"], o["mix_off_epoch"]) == (0.8, 1, 0.5, 200)
    assert o["tet"] is True and "tet_lambda" not in o and "tet_means" not in o
    # Flags with a leading zero stay strings (YAML 1.1 would read 0011 as octal 9).
    assert cfg.data.options == {"mode": "row", "frames": 16, "perm_seed": "03"}
    assert cfg.model.options == {"strides": "0011", "pooling": "0001"}
    assert config_from_dict(config_to_dict(cfg)) == cfg
    recipe = load_config(None, ["data.options={size: 64, split_by: time}"])
    assert recipe.data.options == {"size": 64, "split_by": "time"}


@pytest.mark.parametrize("override,pattern", [
    ("data.options.root=/x", r"set data.root instead"),
    ("data.options=3", r"data.options must be a mapping"),
    ("data.mode=row", r"unknown config key 'data.mode'; valid keys of data: .*options"),
])
def test_new_key_errors(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])
