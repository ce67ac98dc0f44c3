"""Hypothesis profiles for the export fuzz tests (test_fuzz.py).

`ci`, the default, keeps test_fuzz.py to about a minute on a 2-core machine. `long` runs 10,000
examples per parser: `HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/trainer/exports/test_fuzz.py`
(the measured run is in docs/exports.md). No example database: it would be written into the
checkout; a failure prints the blob that reproduces it instead.
"""

import os

from hypothesis import HealthCheck, Phase, settings

COMMON = {
    "deadline": None,  # one example writes and reads a whole export; its time varies with the machine
    "database": None,
    "print_blob": True,
    # The explain phase reruns a failure thousands of times to say which lines it runs: minutes here.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}
settings.register_profile("ci", max_examples=100, **COMMON)
settings.register_profile("long", max_examples=10_000, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
