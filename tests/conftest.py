"""Test-wide settings: the suite runs tiny models, where one CPU thread is as fast as two and immune to
the OpenMP barrier stalls that make two threads up to 20x slower on a busy 2-core machine."""
import torch

torch.set_num_threads(1)
