"""The workflow's steps: one module per rule file, one ``*_step`` function per rule.

A step reads its job's input files, calls the science of :mod:`dlpipe` (through the
experiment's modality and task where the data decide), and writes its output files. The
scripts of ``workflow/scripts`` unpack Snakemake's job into one step call inside
:func:`step_logging`; the command line (:mod:`dlpipe.cli`) calls steps too; tests call them
directly, without Snakemake.

Every job is a fresh Python process, so a step module imports at its top only what all its
steps need, and each step loads heavy science (torch, Lightning, captum, scvi-tools) when it
runs: the baseline job does not pay for Lightning, nor the aggregate job for torch.
"""

from dlpipe.logs import step_logging

__all__ = ["step_logging"]
