"""Side-by-side benchmarks of moka-py against the caches a Python user could pick.

Entry point: ``python benchmarks/run.py`` (or ``nox -s bench``). One module per
concern: ``peers`` loads the libraries behind one adapter interface, ``timing``
runs interleaved rounds, ``cases`` holds the single-thread operations,
``threads``/``memory`` run in subprocesses, ``streams``/``hitratio`` simulate
policies, ``engine`` drives the Rust criterion bench, ``report`` writes the page.
"""
