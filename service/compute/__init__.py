"""The scoring pipeline and what it runs: admission, compute lanes, deadlines, work estimates,
one loss on one batch (``engine``), several at once (``evaluation``), regularization."""
