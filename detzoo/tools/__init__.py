"""Measurement and inspection tools behind the ``detzoo benchmark``, ``flops``, ``analyze-logs``
and ``browse-dataset`` commands."""
