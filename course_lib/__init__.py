"""Helpers for the course "Distributed Model Selection and Assessment".

One module per idea. What the lessons import:

* ``cluster``: start, watch and always stop a cluster (local, SSH, MPI, Slurm);
* ``memory``: memory of processes, engines and hosts, sampled while work runs;
* ``splits``: cross-validation splits persisted once, memory-mapped by engines;
* ``search``: grid, random, successive-halving and patient searches on the cluster;
* ``text``: tweets read by partition, the hashing pipeline, out-of-core learning;
* ``averaging``: one linear model per partition, averaged;
* ``datasets``: the Sentiment140 download and its offline look-alike;
* ``quiz``: pop-quiz answers checked on the spot;
* ``lab``: what ``make lab`` runs; ``grading``: the nbgrader pipeline;
  ``guard`` and ``tamper``: what grading checks in a submission.

The private modules (``_name``) each hold one piece the public ones share:
``_launchers`` (the launcher registry), ``_engines`` (hosts and PIDs of
engines), ``_cluster_folders``, ``_processes`` (process trees and their
stopping), ``_validation`` (integer, seconds and file checks), ``_files``
(the atomic write), ``_search_strategy`` and ``_strategy_*`` (the search
strategy registry and its entries), ``_search_plan`` (a search's checks at the
door), ``_search_results`` (ranking, ``cv_results_``, report, plots),
``_search_journal``, ``_tweet_corpus`` and ``_tweet_words`` (the offline
corpus), ``_notebook_format``, ``_quiz_release`` and ``_nbgrader_task``.
"""

__version__ = "0.1.0"
