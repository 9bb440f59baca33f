"""django-helpdesk's URLs under their namespace: its mail templates link to tickets."""

from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
