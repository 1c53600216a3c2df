"""Training: typed configuration, the engine, crash-safe files and checkpoints."""
from .config import (
    ALIASES,
    DataSection,
    ModelSection,
    OptimSection,
    RunSection,
    ScheduleSection,
    TrainConfig,
    apply_override,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from .engine import Trainer, train
from .evaluate import evaluate_run, load_trained_model
from .predict import Predictor, load_predictor, predict_files
from .fast_step import make_step
from ..neurons.monitor import FiringRateMonitor
from .recompute import enable_recompute
from ..io import (
    Checkpoint,
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    read_jsonl,
    restore_rng_state,
    save_checkpoint,
)

__all__ = [
    "Trainer",
    "train",
    "evaluate_run",
    "load_predictor",
    "make_step",
    "enable_recompute",
    "predict_files",
    "Predictor",
    "load_trained_model",
    "FiringRateMonitor",
    "ALIASES",
    "DataSection",
    "ModelSection",
    "OptimSection",
    "RunSection",
    "ScheduleSection",
    "TrainConfig",
    "apply_override",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "Checkpoint",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "capture_rng_state",
    "load_checkpoint",
    "read_jsonl",
    "restore_rng_state",
    "save_checkpoint",
]
