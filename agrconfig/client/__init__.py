"""The client side: find, spawn, revive and upgrade workers; ifconfig operations on plain interfaces."""
