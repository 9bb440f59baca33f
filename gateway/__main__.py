"""``python -m gateway`` runs the command line."""

from gateway.cli import main

if __name__ == "__main__":  # not when a multiprocessing child imports the main module
    main()
