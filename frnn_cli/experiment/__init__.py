"""Experiments: the plan, its execution, and the verdict, composed into ``sweep`` (and ``compare``).

* :mod:`.grid`    -- the ``KEY=VALUES`` grammar and job seeds;
* :mod:`.plan`    -- a sweep's spec and the jobs it expands to;
* :mod:`.execute` -- running jobs in worker processes, each into its own run folder;
* :mod:`.verdict` -- the chance test, what counts as learned, ``max_T``;
* :mod:`.sweep`   -- one sweep: plan -> execute -> verdict -> files and plots.

Data flows one way, plan -> execute -> verdict -> files; no module reaches back.
"""
