"""Run the botops command line as ``python -m botops``."""

from botops.cli import main

if __name__ == "__main__":
    main()
