"""dataswarms_core: the pure library behind dataswarms.

Data Swarms (Feng et al., arXiv 2506.00741) searches a swarm of LoRA *generators* with particle swarm
optimisation so that the evaluation items they write optimise an *objective* computed from *test takers'*
scores. This package holds the method itself: PSO (``pso``), objectives, judges, the generation backend,
adapters, storage, seed-generator SFT and data loading. It never imports Prefect; the Prefect shell lives in
the top-level ``tasks`` and ``flows`` packages.

Importing this package is cheap: heavy dependencies (torch, transformers) load in the modules that use them.
"""

__version__ = "0.1.0"
