"""What simulated threads do: scenario steps turned into actions, access patterns."""
