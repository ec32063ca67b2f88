"""The engine: computes the tasks of an :class:`~gmstep.experiment.Experiment`.

- :mod:`.streams`: the named random streams of a task;
- :mod:`.datasets`: the data source and the data sets of a task, and their cache;
- :mod:`.parallel`: threads, BLAS, row blocks, tiles, scratch and ordered noise (one state object);
- :mod:`.steps`: the fused products (gradient step, readout features, test sums);
- :mod:`.task`: :func:`~gmstep.engine.task.compute_task`, one task's typed result.

docs/ARCHITECTURE.md shows how they fit together.
"""
