"""How sure we are of a sender: Authentication-Results, the trust verdict, bounce marks."""
