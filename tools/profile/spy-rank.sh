#!/bin/sh
# Run one MPI rank under py-spy (wall-clock samples, idle included) if its rank is
# listed in SPY_RANKS (default "0 1"); the other ranks run bare. MPICH's hydra sets
# PMI_RANK, Open MPI OMPI_COMM_WORLD_RANK. Profiles go to $SPY_OUT/rankN.txt as
# collapsed stacks (read them with tools/profile/top.py). Usage:
#   SPY_OUT=/tmp/prof mpiexec -n 8 tools/profile/spy-rank.sh python -m emu run ...
rank=${PMI_RANK:-${OMPI_COMM_WORLD_RANK:-0}}
for r in ${SPY_RANKS:-0 1}; do
  if [ "$r" = "$rank" ]; then
    exec py-spy record --idle --nonblocking --function --rate "${SPY_RATE:-100}" \
      --format raw -o "${SPY_OUT:-.}/rank$rank.txt" -- "$@"
  fi
done
exec "$@"
