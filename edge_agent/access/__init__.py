"""Key cards, PINs and manual opening: first-class ways through the gate."""
