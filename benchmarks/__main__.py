"""`python -m benchmarks`: the harness's command line (see `benchmarks.cli`)."""

from benchmarks.cli import app

if __name__ == "__main__":
    app(prog_name="benchmarks")
