"""Benchmark suites: a recipe plus axes, run as ordinary run directories by a launcher (local, Ray,
Slurm), summarised by a leaderboard derived from the run directories alone."""
from .board import collect_runs, leaderboard, mean_std, pareto_front, write_leaderboard
from .launch import LAUNCHERS, Job, LocalLauncher, RayLauncher, SlurmLauncher
from .runner import cell_state, report_suite, run_suite
from .spec import Cell, Suite, cell_name, load_suite

__all__ = ["run_suite", "report_suite", "load_suite", "leaderboard", "write_leaderboard", "collect_runs", "mean_std",
           "pareto_front", "cell_state", "cell_name", "Cell", "Suite", "Job", "LocalLauncher", "RayLauncher",
           "SlurmLauncher", "LAUNCHERS"]
