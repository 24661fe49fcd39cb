"""Actors for tests that call the audited services directly (views and commands build their own)."""

from omi_memory.actors import DASHBOARD, USER, Actor

COMMAND = Actor.command()


def dashboard_actor(user) -> Actor:
    """What a dashboard request of `user` would build."""
    return Actor(kind=USER, name=user.get_username(), origin=DASHBOARD, user_id=user.pk, ip_address="127.0.0.1")
