"""Raw bytes to one Analysis: MIME parsing, reply text, auto-reply and bounce classifiers."""
