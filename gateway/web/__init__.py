"""The few web pages mail cannot replace: grant activation, the access overview, unsubscribe."""
