"""Stream state: Faust tables, the agents that feed them, and the web views that read them."""
