"""The running gateway: the Gateway object, brokers and actors, the server, the scheduler."""
