"""The WSGI app gunicorn serves: Django, and under /mcp the MCP server (omi_memory/mcp.py, an ASGI
app bridged to WSGI; imported on the first MCP request, so the site alone does not load the SDK)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omi_memory.settings")
django_application = get_wsgi_application()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/mcp" or path.startswith("/mcp/"):
        from omi_memory.mcp import wsgi_app

        return wsgi_app(environ, start_response)
    return django_application(environ, start_response)
