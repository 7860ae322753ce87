"""`python -m emu` entry point (usually under `mpirun -n N`)."""

from emu.cli import main

if __name__ == "__main__":
    main()
