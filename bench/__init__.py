"""eventyard's side-by-side benchmarks: ``python -m bench`` (or ``make bench``).

Each scenario runs eventyard and the peer a user would pick instead on the same generated
events, in one run on one machine, and reports both figures, their ratio and the target (see
docs/benchmarks.md for the latest table). ``harness`` holds timing, targets and the table,
``events`` the generated events, ``peers`` the systems compared against, ``scenarios`` one
module per scenario, ``machine`` and ``report`` the machine description and the Markdown page.
"""
