"""Processing one spooled message: the context, the steps in order, the transaction around them."""
