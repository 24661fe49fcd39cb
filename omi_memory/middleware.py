from django.http import JsonResponse
from django.utils.cache import patch_cache_control

from .errors import error_body


class ApiErrorShapeMiddleware:
    """Under /api/, a 404 or 405 from URL routing (no such path, or no such method on it) gets
    the one error shape too, not an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code == 404:
            return JsonResponse(error_body("not_found", f"no such endpoint: {request.path}"), status=404)
        if response.status_code == 405:
            shaped = JsonResponse(
                error_body("method_not_allowed", f"{request.method} is not allowed on {request.path}"), status=405
            )
            if response.has_header("Allow"):
                shaped["Allow"] = response["Allow"]
            return shaped
        return response


class PrivateAnswersMiddleware:
    """Answers that carry users' memories are kept by no cache, shared or the browser's own:
    `Cache-Control: private, no-store` on every API answer (the docs and schema aside) and on every
    page shown to someone signed in (the whole dashboard is transcripts and what was made of them)."""

    PUBLIC_API = ("/api/v1/docs", "/api/v1/openapi.json")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self.private(request):
            patch_cache_control(response, private=True, no_store=True)
        return response

    def private(self, request) -> bool:
        if request.path.startswith("/api/"):
            return not request.path.startswith(self.PUBLIC_API)
        user = getattr(request, "user", None)
        return bool(user and user.is_authenticated)
