"""The WSGI app gunicorn serves: Django, and under /mcp the MCP server (omi_memory/mcp.py, an ASGI
app bridged to WSGI; imported on the first MCP request, so the site alone does not load the SDK),
whose answers are counted here (Django's middleware never sees them)."""

import os

from django.core.wsgi import get_wsgi_application

from omi_memory.metrics import counted_wsgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omi_memory.settings")
django_application = get_wsgi_application()


def _mcp(environ, start_response):
    from omi_memory.mcp import wsgi_app

    return wsgi_app(environ, start_response)


mcp_application = counted_wsgi(_mcp, "/mcp")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/mcp" or path.startswith("/mcp/"):
        return mcp_application(environ, start_response)
    return django_application(environ, start_response)
