"""Side-effect services the handlers call: email, and (later) exports and search."""
