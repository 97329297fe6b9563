"""Layer 5, report: the verdict (gen-PPL at matched entropy, pairwise table), tables, plots and
the HTML leaderboard, read from result files only. Imports core; never engine."""
