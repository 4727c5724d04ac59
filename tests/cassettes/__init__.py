"""Replay of the vcrpy cassettes recorded from the real model server (`make cassettes`)."""
