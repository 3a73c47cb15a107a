"""Checkpoints: the one place that knows the files of an experiment folder.

- ``digest.py``: the content digest every file carries and every read checks.
- ``files.py``: the names (``latest.pt``, ``<epoch>.pt``, ``iter_<N>.pt``, ``<label>_net_G.pt``,
  the reference's ``<label>_net_G.pth`` / ``_net_D.pth``), the atomic write and the safe read.
- ``format.py``: what each file holds, its version, saving a training state, and the upgrade
  of files written by earlier versions.
- ``resume.py``: which checkpoint ``--continue_train`` takes, and loading it for training.
- ``generator.py``: finding the generator (or its moving average) for inference and export.
"""
from engine.checkpoint.files import (PAUSE_IN_SAVE_ENV, CheckpointError, DamagedCheckpointError, existing_checkpoints,
                                     full_path, generator_path, iter_label, load_file, load_label, read_options,
                                     reference_paths, remove_stray_temporaries, save_atomic)
from engine.checkpoint.format import (FORMAT_VERSION, FULL_FORMAT, GENERATOR_FORMAT, UNRECORDED, Execution,
                                      options_dict, save_training, write_generator)
from engine.checkpoint.generator import SavedGenerator, find_generator
from engine.checkpoint.resume import AUTO, auto_resume_label, reference_files, require_resumable, resume_training

__all__ = ["AUTO", "FORMAT_VERSION", "FULL_FORMAT", "GENERATOR_FORMAT", "PAUSE_IN_SAVE_ENV", "CheckpointError",
           "DamagedCheckpointError",
           "Execution", "SavedGenerator", "UNRECORDED", "auto_resume_label", "existing_checkpoints", "find_generator",
           "full_path", "require_resumable",
           "generator_path", "iter_label", "load_file", "load_label", "options_dict", "read_options", "reference_files",
           "reference_paths", "remove_stray_temporaries", "resume_training", "save_atomic", "save_training",
           "write_generator"]
