from django.urls import path

from . import views

urlpatterns = [
    path("cache/stats", views.CacheStatsView.as_view(), name="admin-cache-stats"),
    path("cache/<str:app>/keys", views.CacheKeysView.as_view(), name="admin-cache-keys"),
    path("cache/<str:app>", views.CacheClearView.as_view(), name="admin-cache-clear"),
]
