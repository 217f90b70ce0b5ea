"""A minimal Django project for the Django tests, configured in-process
(``settings.configure``, no pytest-django): an in-memory SQLite database
with the auth and session apps, both middlewares, the analytics app (which
connects the auth signals in its ``ready()``), and this module as the
URLconf: a few routes shaped like the seed's product API.

Importing it configures Django once per process; the unit tests
(test_django*.py) and the integration tests (test_django_integration.py)
share it, each giving the integration its own client with ``set_client``.
"""

from __future__ import annotations

import json

import django
from django.conf import settings

MIDDLEWARE = [
    "analytics_client.django.ApiTrackingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "analytics_client.django.ActivityTrackingMiddleware",
]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-secret",
        ALLOWED_HOSTS=["testserver", "localhost", "127.0.0.1"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=MIDDLEWARE,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "analytics_client.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        # Fast hashing: the tests log in many times.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        ANALYTICS={},
        LOGGING_CONFIG=None,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)

from django.contrib.auth import authenticate, get_user_model, login, logout  # noqa: E402
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import include, path, re_path  # noqa: E402


def user(username="alice", password="s3cret-pw"):
    """A user of the test database (created once)."""
    User = get_user_model()
    u = User.objects.filter(username=username).first()
    return u or User.objects.create_user(username, password=password)


# ---- views ------------------------------------------------------------------


def reports(request):
    if request.method == "POST":
        return JsonResponse({"id": 9}, status=201)
    return JsonResponse({"items": []})


def report(request, pk):
    if request.method == "DELETE":
        return HttpResponse(status=204)
    return JsonResponse({"id": pk})


def download(request, pk):
    return HttpResponse(b"%PDF-1.7 " + b"x" * 100, content_type="application/pdf")


def client_reports(request, client_id):
    # The view knows more than the URL: the report it generated.
    request.analytics_activity = {"report_id": "r-77", "report": {"status": "completed", "processing_time_ms": 1200}}
    return JsonResponse({"id": "r-77"}, status=201)


def clients(request):
    return JsonResponse({"id": 5}, status=201)


def client_detail(request, pk):
    if request.method == "DELETE":
        return HttpResponse(status=204)
    return JsonResponse({"id": pk})


def upload(request, pk):
    return JsonResponse({"rows": 12}, status=201)


def dashboard(request):
    return JsonResponse({"ok": True})


def fail(request):
    return HttpResponse("down", status=503)


def fail_explained(request):
    request.analytics_error = "database unreachable"
    return HttpResponse("oops", status=500)


def boom(request):
    raise RuntimeError("the view blew up")


def stream(request):
    return StreamingHttpResponse(iter([b"a" * 10, b"b" * 5]))


def health(request):
    return HttpResponse("ok")


def article(request, year):
    return HttpResponse(f"articles of {year}")


def item(request, item_id):
    return JsonResponse({"item": item_id})


def custom(request):
    request.analytics_activity = {"action": "export_data", "description": "exported the client list"}
    return JsonResponse({"ok": True})


def token_reports(request):
    # A token-authenticated API: the view names the caller itself.
    request.analytics_user = "svc-1"
    return JsonResponse({"id": 10}, status=201)


def forbidden_report(request):
    return JsonResponse({"error": "no"}, status=403)


def login_view(request):
    body = json.loads(request.body or b"{}")
    u = authenticate(request, username=body.get("username"), password=body.get("password"))
    if u is None:
        return JsonResponse({"error": "invalid credentials"}, status=401)
    login(request, u)
    return JsonResponse({"user": u.pk})


def logout_view(request):
    logout(request)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("reports", reports),
    path("reports/<int:pk>", report),
    path("reports/<int:pk>/download", download),
    path("clients", clients),
    path("clients/<int:pk>", client_detail),
    path("clients/<int:pk>/upload", upload),
    path("clients/<slug:client_id>/reports", client_reports),
    path("dashboard", dashboard),
    path("fail", fail),
    path("fail-explained", fail_explained),
    path("boom", boom),
    path("stream", stream),
    path("health", health),
    path("health/db", health),
    path("healthy", health),
    re_path(r"^articles/(?P<year>[0-9]{4})/$", article),
    path("api/v2/", include([path("items/<int:item_id>", item)])),
    path("custom", custom),
    path("forbidden-report", forbidden_report),
    path("tokens/reports", token_reports),
    path("login", login_view),
    path("logout", logout_view),
]
