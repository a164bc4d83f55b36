"""The staff page for people, under /dashboard/ (session login, not Bearer tokens)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard_page, name="dashboard"),
    path("data", views.dashboard_data, name="dashboard-data"),
]
