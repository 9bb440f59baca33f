"""Minimal Django settings for django-helpdesk beside the gateway (bench/throughput.py).

SQLite in the run's temp dir (``HELPDESK_BENCH_DIR``), mail to files there: the same kind
of storage and outbound transport the gateway gets in embedded mode.  Not part of the
gateway; imported only by ``bench/helpdesk/run.py`` inside the benchmark's own venv.
"""

import os
from pathlib import Path

WORK = Path(os.environ["HELPDESK_BENCH_DIR"])
SECRET_KEY = "bench-only-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
SITE_ID = 1
ROOT_URLCONF = "urls"
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages"]},
}]
# WAL with synchronous=NORMAL, as the gateway's processing commits: the peer gets the
# same durability (and the same speed-up over rollback journals) as we do.
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3", "NAME": str(WORK / "helpdesk.sqlite3"),
    "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
MEDIA_ROOT = str(WORK / "media")
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = str(WORK / "sent")
DEFAULT_FROM_EMAIL = "support@support.example"
HELPDESK_TEAMS_MODE_ENABLED = False
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# The corpus's attachments are .pdf, .png, .csv and .zip: a support desk takes log exports
# and archives. django-helpdesk's default list lacks .csv and .zip, and a refused
# attachment raises inside its mail loop, which ends the whole get_email run there.
HELPDESK_VALID_EXTENSIONS = [".txt", ".asc", ".pdf", ".doc", ".docx", ".odt", ".jpg", ".png",
                             ".eml", ".csv", ".zip", ".log"]
