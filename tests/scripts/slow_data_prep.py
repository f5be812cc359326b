"""`python -m data_prep.build_tfrecords`, slowed by SECONDS after every decoded video, so a test
can kill the job part-way through.

  python tests/scripts/slow_data_prep.py SECONDS <build_tfrecords arguments>
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from data_prep import build_tfrecords, job  # noqa: E402


def slow_down(seconds: float) -> None:
    results = job._results

    def slow_results(tasks, workers):
        for result in results(tasks, workers):
            yield result
            time.sleep(seconds)

    job._results = slow_results


if __name__ == "__main__":
    slow_down(float(sys.argv.pop(1)))
    sys.exit(build_tfrecords.main(sys.argv[1:]))
