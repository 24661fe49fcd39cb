"""Pluggable parts: a base class, a registry of dotted paths imported on first use, a setting.

`load("EMBEDDER", EMBEDDERS)` returns the one instance of the part named by `settings.EMBEDDER`
(a registry name, or a dotted path to a class of your own). Instances are cached per name, so a
model loads once per process; changing the setting picks another instance.
"""

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

_instances: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def load(setting: str, registry: dict[str, str]):
    name = getattr(settings, setting)
    key = (setting, name)
    instance = _instances.get(key)
    if instance is None:
        with _lock:
            instance = _instances.get(key)
            if instance is None:
                path = registry.get(name, name if "." in name else None)
                if path is None:
                    choices = ", ".join(sorted(registry))
                    raise ImproperlyConfigured(f"{setting}={name!r}: choose one of {choices}, or a dotted path")
                instance = import_string(path)()
                _instances[key] = instance
    return instance


@receiver(setting_changed)
def _forget_parts(**kwargs) -> None:
    """Settings changed (in tests): parts are built again from the new settings."""
    with _lock:
        _instances.clear()
